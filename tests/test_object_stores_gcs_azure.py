"""gs:// and az:// locations against real local emulators, as test_object_stores.py tests
s3:// against moto: gcp-storage-emulator (the test extra) for the GCS JSON API, Azurite (npm;
`python3 tasks.py test` installs it into .venv/azurite) for Azure Blob Storage. Each starts
once for the module on a free port. The fetch's clients are pyarrow's own, configured from the
environment as on a run worker.

Azurite checks shared-key and SAS signatures, so refused credentials are tested on Azure; the
GCS emulator takes any request, as Google's clients go to an emulator without credentials."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import os
import shutil
import sys
import traceback
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd
import pyarrow.fs as pafs
import pytest
from _stores import (
    BUCKET,
    DTYPES,
    february_by_arrow,
    free_port,
    materialize_february,
    objects,
    parts_in_sorted_order,
    read,
    rows,
    server,
)

from bulk_assets import Fetcher, FetchError

REPO = Path(__file__).resolve().parents[1]
# Where tasks.py installs Azurite (npm install --prefix .venv/azurite).
AZURITE = REPO / ".venv" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's one account and its documented key: public, the same on every machine.
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
# A key of the right shape (base64 of 64 bytes) that the account does not have.
WRONG_KEY = base64.b64encode(b"wrong-key-for-the-loader-".ljust(64, b"0")).decode()
# Every variable the store settings read: the tests set the ones they mean.
_SETTINGS = (
    "STORAGE_EMULATOR_HOST",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_ENDPOINT",
)

_SECRET_SETTINGS = (
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
)


@dataclass(frozen=True)
class Emulator:
    scheme: str
    #: Its host and port.
    host: str
    #: The run worker's environment that reaches it.
    env: dict[str, str]


def _skip_or_fail(reason: str) -> NoReturn:
    # CI installs every emulator (tasks.py test): missing there is a broken set-up.
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def _upload(filesystem: pafs.FileSystem) -> None:
    for name, body in objects().items():
        with filesystem.open_output_stream(f"{BUCKET}/{name}") as out:
            out.write(body)


def _use(settings: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The run worker's environment: these settings and none of the others."""
    for name in _SETTINGS:
        monkeypatch.delenv(name, raising=False)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(scope="module")
def gcs() -> Iterator[Emulator]:
    try:
        import gcp_storage_emulator  # noqa: F401
    except ImportError:
        _skip_or_fail("gcp-storage-emulator is not installed: pip install -e '.[test]'")
    port = free_port()
    argv = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1"]
    argv += ["--port", str(port), "--in-memory", "--default-bucket", BUCKET]
    with server(argv, port=port, name="gcp-storage-emulator"):
        host = f"127.0.0.1:{port}"
        _upload(pafs.GcsFileSystem(endpoint_override=host, scheme="http", anonymous=True))
        yield Emulator("gs", host, {"STORAGE_EMULATOR_HOST": f"http://{host}"})


@pytest.fixture(scope="module")
def azurite() -> Iterator[Emulator]:
    binary = str(AZURITE) if AZURITE.exists() else shutil.which("azurite-blob")
    if binary is None:
        if shutil.which("node") is None or shutil.which("npm") is None:
            _skip_or_fail("Azurite needs Node.js and npm (Debian: apt-get install nodejs npm)")
        _skip_or_fail("Azurite is not installed: `python3 tasks.py test` installs it with npm")
    port = free_port()
    # In memory: nothing is left on disk. Arrow's Azure SDK may send an API version newer
    # than Azurite knows, which it refuses without --skipApiVersionCheck.
    argv = [binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence"]
    argv += ["--silent", "--skipApiVersionCheck"]
    # Asked to stop, Azurite waits for the idle connections that the client's pool keeps
    # open until this process exits (10 s and more): its data is in memory, nothing is lost.
    with server(argv, port=port, name="Azurite", grace=0.5):
        host = f"127.0.0.1:{port}"
        filesystem = pafs.AzureFileSystem(
            account_name=ACCOUNT,
            account_key=KEY,
            blob_storage_authority=host,
            blob_storage_scheme="http",
            dfs_storage_authority=host,
            dfs_storage_scheme="http",
        )
        filesystem.create_dir(BUCKET)
        _upload(filesystem)
        # As Azurite's documentation writes it.
        connection = f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        connection += f"BlobEndpoint=http://{host}/{ACCOUNT};"
        yield Emulator("az", host, {"AZURE_STORAGE_CONNECTION_STRING": connection})


@pytest.fixture(params=["gs", "az"])
def store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """Each emulator, with the run worker's environment set to reach it."""
    emulator: Emulator = request.getfixturevalue("gcs" if request.param == "gs" else "azurite")
    _use(emulator.env, monkeypatch)
    return emulator


@pytest.mark.parametrize("name", ["rows.csv", "rows.parquet"])
def test_an_object_reads_like_a_file(store: Emulator, name: str) -> None:
    got = read(f"{store.scheme}://{BUCKET}/one/{name}", chunk_rows=7)
    pd.testing.assert_frame_equal(got, rows().astype(DTYPES))


@pytest.mark.parametrize("location", ["parts/part-*.csv", "parts/", "**/part-?.csv"])
def test_a_glob_or_a_prefix_reads_every_object_in_sorted_order(
    store: Emulator, location: str
) -> None:
    got = read(f"{store.scheme}://{BUCKET}/{location}", format="csv")
    pd.testing.assert_frame_equal(got, parts_in_sorted_order().astype(DTYPES))


def test_a_missing_object_is_named(store: Emulator) -> None:
    location = f"{store.scheme}://{BUCKET}/one/missing.csv"
    with pytest.raises(FetchError, match="no such object") as info:
        read(location)
    assert location in str(info.value)
    with pytest.raises(FetchError, match="no file matches the pattern"):
        read(f"{store.scheme}://{BUCKET}/one/nothing-*.csv")


@pytest.mark.parametrize("location", ["one/rows.parquet", "parts/part-*.csv", "parts/"])
def test_the_arrow_path_reads_objects_and_prefixes_and_keeps_a_slice(
    store: Emulator, location: str
) -> None:
    ids = february_by_arrow(f"{store.scheme}://{BUCKET}/{location}")
    assert ids == list(range(32, 60))


def test_a_monthly_dataset_over_one_object_loads_its_month(
    store: Emulator, search_path_dsn: str, db: Any, schema: str
) -> None:
    assert materialize_february(f"{store.scheme}://{BUCKET}/one/rows.parquet", search_path_dsn)
    ids = [r["id"] for r in db.fetch(f'SELECT id FROM "{schema}".rows ORDER BY id')]
    assert ids == list(range(32, 60))


def test_an_unreachable_endpoint_is_transient_and_named(
    store: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in store.env.items():
        monkeypatch.setenv(name, value.replace(store.host, f"127.0.0.1:{free_port()}"))
    location = f"{store.scheme}://{BUCKET}/one/rows.csv"
    with pytest.raises(FetchError) as info:
        # GCS retries for the Fetcher's timeout; Azure's SDK for its own 6 s, whatever it is.
        frames = Fetcher(timeout=1, retries=0).frames(location, dtypes=DTYPES)
        next(iter(frames))
    assert f"csv from {location}" in str(info.value)
    assert info.value.retryable  # the Fetcher's own retries apply, as for S3 and HTTP


def test_the_gcs_emulator_host_may_leave_out_its_scheme(
    gcs: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Google's Python client wants http://HOST:PORT, its C++ and Go clients take HOST:PORT.
    _use({"STORAGE_EMULATOR_HOST": gcs.host}, monkeypatch)
    pd.testing.assert_frame_equal(read(f"gs://{BUCKET}/one/rows.csv"), rows().astype(DTYPES))


def account_sas(key: str) -> str:
    """An account SAS for the blob service, signed with ``key`` (the string to sign of
    versions 2020-12-06 and later)."""
    fields = {
        "sv": "2021-08-06",
        "ss": "b",
        "srt": "sco",
        "sp": "rl",
        "se": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "spr": "https,http",
    }
    # account, permissions, services, resource types, start (none), expiry, IP (none),
    # protocols, version, encryption scope (none), and an empty last line.
    lines = [ACCOUNT, fields["sp"], fields["ss"], fields["srt"], "", fields["se"], ""]
    lines += [fields["spr"], fields["sv"], "", ""]
    signed = "\n".join(lines)
    digest = hmac.new(base64.b64decode(key), signed.encode(), hashlib.sha256).digest()
    fields["sig"] = base64.b64encode(digest).decode()
    return urllib.parse.urlencode(fields)


def _settings(azurite: Emulator, *, key: str) -> dict[str, dict[str, str]]:
    """Each way of naming Azurite's account and endpoint, with ``key`` for the credential."""
    endpoint = f"http://{azurite.host}/{ACCOUNT}"
    return {
        "connection string with a key": {
            "AZURE_STORAGE_CONNECTION_STRING": f"BlobEndpoint={endpoint};AccountKey={key}"
        },
        "connection string with a SAS": {
            "AZURE_STORAGE_CONNECTION_STRING": f"BlobEndpoint={endpoint};"
            f"SharedAccessSignature={account_sas(key)}"
        },
        "account name and key": {
            "AZURE_STORAGE_ACCOUNT_NAME": ACCOUNT,
            "AZURE_STORAGE_ACCOUNT_KEY": key,
            "AZURE_STORAGE_ENDPOINT": endpoint,
        },
        "SAS token": {
            # As the az CLI prints it, with its "?"; the endpoint with a trailing "/".
            "AZURE_STORAGE_SAS_TOKEN": "?" + account_sas(key),
            "AZURE_STORAGE_ENDPOINT": endpoint + "/",
        },
    }


_WAYS = [
    "connection string with a key",
    "connection string with a SAS",
    "account name and key",
    "SAS token",
]


@pytest.mark.parametrize("way", _WAYS)
def test_each_way_of_naming_the_account_and_endpoint_reads(
    azurite: Emulator, way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(_settings(azurite, key=KEY)[way], monkeypatch)
    got = read(f"az://{BUCKET}/one/rows.parquet")
    pd.testing.assert_frame_equal(got, rows().astype(DTYPES))


@pytest.mark.parametrize("way", _WAYS)
@pytest.mark.parametrize("name", ["rows.csv", "rows.parquet", "part-*.csv"])
def test_refused_credentials_fail_clearly_and_keep_the_secret(
    azurite: Emulator, way: str, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(azurite, key=WRONG_KEY)[way]
    _use(settings, monkeypatch)
    prefix = "parts" if "*" in name else "one"
    with pytest.raises(FetchError) as info:
        read(f"az://{BUCKET}/{prefix}/{name}")
    error = info.value
    text = "".join(traceback.format_exception(error))
    assert f"az://{BUCKET}/{prefix}/" in str(error)
    assert "the store refused the credentials: check AZURE_STORAGE_CONNECTION_STRING" in text
    secrets = [settings[var] for var in _SECRET_SETTINGS if var in settings]
    secrets += [WRONG_KEY, urllib.parse.quote(WRONG_KEY, safe=""), KEY]
    for value in secrets[:]:
        # The signature alone, and percent-encoded as a SAS carries it.
        for sig in urllib.parse.parse_qs(value.lstrip("?")).get("sig", []):
            secrets += [sig, urllib.parse.quote(sig, safe="")]
    leaked = [secret for secret in secrets if secret in text]
    assert not leaked, text
    assert not error.retryable
