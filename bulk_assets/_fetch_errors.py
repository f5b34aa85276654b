"""The one exception a fetch raises, and the redaction every message goes through."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass
from typing import Any

__all__ = ["FetchError", "Where", "redact"]

_MASK = "***"


class FetchError(Exception):
    """A dataset could not be read: the location could not be opened, the download broke off,
    a row is malformed or a value does not convert to its declared dtype.

    The message names the location (credentials masked), the format and, where one applies,
    the line, row, column or HTTP status. The underlying exception is kept as ``__cause__``.

    Attributes:
        location: the URL or path, with userinfo and query values masked.
        format: ``csv``, ``parquet`` or ``jsonl``.
        status: the HTTP status, for a response that was an error.
        line: the line of the file the error is on (CSV: header included, 1-based).
        row: 0-based position of the data row in the whole dataset.
        column: the column (target name) whose value did not convert.
        transient: whether fetching again may succeed (connection lost, 5xx, timeout).
    """

    def __init__(
        self,
        message: str,
        *,
        location: str,
        format: str,
        status: int | None = None,
        line: int | None = None,
        row: int | None = None,
        column: str | None = None,
        transient: bool = False,
    ) -> None:
        super().__init__(message)
        self.location = location
        self.format = format
        self.status = status
        self.line = line
        self.row = row
        self.column = column
        self.transient = transient

    @property
    def retryable(self) -> bool:
        """Whether fetching again may succeed: the same rule the writer's errors follow."""
        return self.transient


@dataclass(frozen=True, slots=True)
class Where:
    """What every error message starts with: the format and the masked location."""

    location: str
    format: str

    def error(self, detail: str, **attrs: Any) -> FetchError:
        return FetchError(
            f"{self.format} from {self.location}: {detail}",
            location=self.location,
            format=self.format,
            **attrs,
        )


def redact(location: str) -> str:
    """``location`` fit for a message or a log: the userinfo of a URL (``user:password@``) and
    every query value become ``***``. All query values, not only ``token=``: a presigned URL
    carries its signature under names of the issuer's choosing (``X-Amz-Signature``, ``sig``)."""
    parts = urllib.parse.urlsplit(location)
    # A one-letter "scheme" is a Windows drive; no scheme at all is a plain path.
    if len(parts.scheme) < 2:
        return location
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{_MASK}@{netloc.rpartition('@')[2]}"
    query = "&".join(
        f"{item.partition('=')[0]}={_MASK}" if item else item for item in parts.query.split("&")
    )
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))
