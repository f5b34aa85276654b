"""Object stores a location may name (``s3://``, ``gs://``, ``az://``): each one object that
says how to reach it through ``pyarrow.fs`` and which of its settings are secrets.

Credentials come from the environment, read when a fetch starts (never at import): the AWS
SDK's own chain for S3 (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, a profile or an instance role) plus ``AWS_ENDPOINT_URL`` for an
S3-compatible server, which Arrow's S3 client does not read by itself; Google's default
credentials for GCS, or ``STORAGE_EMULATOR_HOST`` for an emulator (anonymous, as Google's own
clients go to one); for Azure ``AZURE_STORAGE_CONNECTION_STRING``, or
``AZURE_STORAGE_ACCOUNT_NAME`` with ``AZURE_STORAGE_ACCOUNT_KEY`` or ``AZURE_STORAGE_SAS_TOKEN``
(or Azure's default credential chain), plus ``AZURE_STORAGE_ENDPOINT`` for an emulator, a
sovereign cloud or a private endpoint (see ``_fetch_azure``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow.fs as pafs

from resources._redact import Secrets

from ._fetch_azure import SECRET_ENV, azure_secrets, azure_settings
from ._fetch_errors import FetchError, Where

__all__ = ["STORES", "ObjectStore", "store_error"]

# What each client's errors say (through Arrow) of failures that a later attempt may not
# meet, and of credentials the store refused: the AWS SDK's error codes, google-cloud-cpp's
# status codes, the Azure SDK's error codes and its words for a connection it could not make.
_S3_TRANSIENT = ("NETWORK_CONNECTION", "SLOW_DOWN", "SERVICE_UNAVAILABLE", "INTERNAL_FAILURE")
_S3_REFUSED = ("ACCESS_DENIED", "SIGNATURE_DOES_NOT_MATCH", "INVALID_ACCESS_KEY_ID", "403")
_GCS_TRANSIENT = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED")
_GCS_REFUSED = ("PERMISSION_DENIED", "UNAUTHENTICATED")
_AZURE_TRANSIENT = (
    "Fail to get a new connection",
    "[ServerBusy]",
    "[InternalError]",
    "[OperationTimedOut]",
)
_AZURE_REFUSED = ("[AuthenticationFailed]", "] 403 ")


@dataclass(frozen=True, slots=True)
class ObjectStore:
    """One object store: its URL scheme, its name in messages, how to open it and the
    environment variables whose values no message may show."""

    scheme: str
    title: str
    connect: Callable[[float], pafs.FileSystem]
    secret_env: tuple[str, ...] = ()
    #: Where the credentials come from, for a message about refused ones.
    credentials: str = ""
    #: Words of an error that a later attempt may not meet.
    transient: tuple[str, ...] = ()
    #: Words of an error that refuses the credentials.
    refused: tuple[str, ...] = ()
    #: Secrets parsed out of the settings (a connection string's account key), which a
    #: client's error may quote on their own.
    parsed_secrets: Callable[[], frozenset[str]] = frozenset

    def secrets(self) -> Secrets:
        named = frozenset(v for name in self.secret_env if (v := os.environ.get(name)))
        return Secrets(named | self.parsed_secrets())

    def open(self, where: Where, *, timeout: float) -> pafs.FileSystem:
        try:
            return self.connect(timeout)
        except ValueError as exc:  # settings that say nothing usable, before any request
            raise store_error(self, where, "its settings cannot be used", exc) from None
        except OSError as exc:
            raise store_error(self, where, "cannot be reached", exc) from None


def store_error(store: ObjectStore, where: Where, doing: str, exc: BaseException) -> FetchError:
    """``exc`` from ``store`` as a FetchError naming the location, with every secret of the
    store's settings scrubbed from its text; the cause is left off, as it may quote them."""
    text = store.secrets().scrub(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, FileNotFoundError):
        return where.error(f"{doing}: no such object in {store.title}")
    hint = ""
    if store.credentials and any(code in text for code in store.refused):
        hint = f"; the store refused the credentials: check {store.credentials}"
    return where.error(
        f"{doing} ({store.title}): {text}{hint}",
        transient=any(code in text for code in store.transient),
    )


def _s3(timeout: float) -> pafs.FileSystem:
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return pafs.S3FileSystem(
        endpoint_override=endpoint or None,
        region=region or None,
        connect_timeout=timeout,
        request_timeout=timeout,
    )


def _gcs(timeout: float) -> pafs.FileSystem:
    # STORAGE_EMULATOR_HOST is what Google's own clients read for an emulator.
    emulator = os.environ.get("STORAGE_EMULATOR_HOST")
    if emulator:
        scheme, _, host = emulator.rpartition("://")
        return pafs.GcsFileSystem(
            endpoint_override=host,
            scheme=scheme or "http",
            anonymous=True,
            retry_time_limit=dt.timedelta(seconds=timeout),
        )
    return pafs.GcsFileSystem(retry_time_limit=dt.timedelta(seconds=timeout))


def _azure(timeout: float) -> pafs.FileSystem:
    # Arrow's Azure client takes no timeout: its SDK's own retry policy applies (about 6 s
    # against an endpoint that refuses connections).
    return pafs.AzureFileSystem(**azure_settings().options())


STORES: dict[str, ObjectStore] = {
    store.scheme: store
    for store in (
        ObjectStore(
            "s3",
            "S3",
            _s3,
            ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"),
            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and AWS_ENDPOINT_URL",
            transient=_S3_TRANSIENT,
            refused=_S3_REFUSED,
        ),
        ObjectStore(
            "gs",
            "Google Cloud Storage",
            _gcs,
            (),
            "GOOGLE_APPLICATION_CREDENTIALS",
            transient=_GCS_TRANSIENT,
            refused=_GCS_REFUSED,
        ),
        ObjectStore(
            "az",
            "Azure Blob Storage",
            _azure,
            SECRET_ENV,
            "AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_NAME with "
            "AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_TOKEN",
            transient=_AZURE_TRANSIENT,
            refused=_AZURE_REFUSED,
            parsed_secrets=azure_secrets,
        ),
    )
}
