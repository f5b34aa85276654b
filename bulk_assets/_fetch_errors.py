"""The one exception a fetch raises, and how its messages are kept free of credentials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from resources._redact import Secrets, mask_url

__all__ = ["FetchError", "Where", "redact", "scrubbed"]


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
    """``location`` fit for a message or a log: the user info of a URL (whatever characters it
    holds) and every query value become ``***``. All query values, not only ``token=``: a
    presigned URL carries its signature under names of the issuer's choosing
    (``X-Amz-Signature``, ``sig``)."""
    return mask_url(location)


def scrubbed(exc: FetchError, secrets: Secrets) -> FetchError:
    """``exc`` if neither its message nor anything in its cause chain holds one of
    ``secrets``; else a copy with the message scrubbed and no cause. Libraries quote the URL
    they were given (``http.client``'s "URL can't contain control characters", an
    ``HTTPError``'s ``filename``), and Dagster stores the whole chain."""
    if secrets.safe_cause(exc) is exc:
        return exc
    return FetchError(
        secrets.scrub(str(exc)),
        location=exc.location,
        format=exc.format,
        status=exc.status,
        line=exc.line,
        row=exc.row,
        column=exc.column,
        transient=exc.transient,
    )
