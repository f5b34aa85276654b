"""How az:// settings in the environment become Arrow's Azure options: the connection string
in the forms Azure's portal, sovereign clouds, private endpoints and Azurite write it, the
variables beside it, and settings that cannot be used, refused with a message that quotes
none of their secrets. Reading with these settings is tested against Azurite in
tests/test_object_stores_gcs_azure.py."""

from __future__ import annotations

import traceback
import urllib.parse

import pytest

from bulk_assets import Fetcher, FetchError
from bulk_assets._fetch_azure import azure_secrets, azure_settings

KEY = "c2VjcmV0LWtleS1vZi10aGUtYWNjb3VudA=="
SIG = "c2lnbmF0dXJl+b25l/w=="
SAS = f"sv=2022-11-02&ss=b&srt=co&sp=rl&se=2027-01-01T00:00:00Z&sig={urllib.parse.quote(SIG)}"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def hosted(account: str, suffix: str, scheme: str = "https") -> dict[str, str]:
    """The options of an account whose name starts the host: ACCOUNT.blob.SUFFIX."""
    return {
        "account_name": account,
        "blob_storage_authority": f".blob.{suffix}",
        "blob_storage_scheme": scheme,
        "dfs_storage_authority": f".dfs.{suffix}",
        "dfs_storage_scheme": scheme,
    }


def emulated(account: str, host: str) -> dict[str, str]:
    """The options of an account named in the path: http://HOST/ACCOUNT."""
    return {
        "account_name": account,
        "blob_storage_authority": host,
        "blob_storage_scheme": "http",
        "dfs_storage_authority": host,
        "dfs_storage_scheme": "http",
    }


@pytest.mark.parametrize(
    ("connection", "expected"),
    [
        pytest.param(
            f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={KEY};"
            "EndpointSuffix=core.windows.net",
            {**hosted("acct", "core.windows.net"), "account_key": KEY},
            id="the portal's",
        ),
        pytest.param(
            f"AccountName=acct;AccountKey={KEY};EndpointSuffix=core.chinacloudapi.cn",
            {**hosted("acct", "core.chinacloudapi.cn"), "account_key": KEY},
            id="a sovereign cloud's, https by default",
        ),
        pytest.param(
            f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};"
            "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;",
            {**emulated("devstoreaccount1", "127.0.0.1:10000"), "account_key": KEY},
            id="Azurite's",
        ),
        pytest.param(
            "UseDevelopmentStorage=true",
            {**emulated("devstoreaccount1", "127.0.0.1:10000"), "account_key": AZURITE_KEY},
            id="Azurite on its default port",
        ),
        pytest.param(
            f"BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature={SAS}",
            {**hosted("acct", "core.windows.net"), "sas_token": f"?{SAS}"},
            id="a SAS one, the account named by its endpoint",
        ),
        pytest.param(
            f"AccountName=acct;AccountKey={KEY};"
            "BlobEndpoint=https://acct.privatelink.blob.core.windows.net",
            {**hosted("acct", "core.windows.net"), "account_key": KEY}
            | {
                "blob_storage_authority": ".privatelink.blob.core.windows.net",
                "dfs_storage_authority": ".privatelink.dfs.core.windows.net",
            },
            id="a private endpoint",
        ),
        pytest.param(
            f" accountname=acct ; ACCOUNTKEY={KEY} ;",
            {"account_name": "acct", "account_key": KEY},
            id="names in any case, Azure's public endpoints by default",
        ),
    ],
)
def test_a_connection_string_names_the_account_its_credential_and_endpoint(
    connection: str, expected: dict[str, str]
) -> None:
    assert azure_settings({"AZURE_STORAGE_CONNECTION_STRING": connection}).options() == expected


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param(
            {"AZURE_STORAGE_ACCOUNT_NAME": "acct", "AZURE_STORAGE_ACCOUNT_KEY": KEY},
            {"account_name": "acct", "account_key": KEY},
            id="an account and its key",
        ),
        pytest.param(
            {"AZURE_STORAGE_ACCOUNT_NAME": "acct", "AZURE_STORAGE_SAS_TOKEN": SAS},
            {"account_name": "acct", "sas_token": f"?{SAS}"},
            id="an account and a SAS token as the portal shows it",
        ),
        pytest.param(
            {"AZURE_STORAGE_ACCOUNT_NAME": "acct"},
            {"account_name": "acct"},
            id="an account and Azure's default credential",
        ),
        pytest.param(
            {
                "AZURE_STORAGE_SAS_TOKEN": f"?{SAS}",
                "AZURE_STORAGE_ENDPOINT": "https://acct.blob.core.usgovcloudapi.net",
            },
            {**hosted("acct", "core.usgovcloudapi.net"), "sas_token": f"?{SAS}"},
            id="an endpoint that names the account",
        ),
        pytest.param(
            {
                "AZURE_STORAGE_CONNECTION_STRING": f"AccountName=acct;AccountKey={KEY}",
                "AZURE_STORAGE_ACCOUNT_NAME": "other",
                "AZURE_STORAGE_SAS_TOKEN": SAS,
                "AZURE_STORAGE_ENDPOINT": "http://127.0.0.1:10000/other",
            },
            {"account_name": "acct", "account_key": KEY},
            id="a connection string, whatever else is set",
        ),
    ],
)
def test_the_variables_beside_a_connection_string(
    environ: dict[str, str], expected: dict[str, str]
) -> None:
    assert azure_settings(environ).options() == expected


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        pytest.param({}, "set AZURE_STORAGE_CONNECTION_STRING, or", id="nothing"),
        pytest.param(
            {"AZURE_STORAGE_ACCOUNT_KEY": KEY}, "AZURE_STORAGE_ACCOUNT_NAME", id="a key alone"
        ),
        pytest.param(
            {"AZURE_STORAGE_CONNECTION_STRING": f"AccountName=acct;{KEY.rstrip('=')}"},
            "is not a list of Name=value pairs",
            id="a key pasted without its name",
        ),
        pytest.param(
            {
                "AZURE_STORAGE_CONNECTION_STRING": f"AccountName=a;AccountKey={KEY};"
                f"SharedAccessSignature={SAS}"
            },
            "names both an AccountKey and a SharedAccessSignature",
            id="a key and a SAS",
        ),
        pytest.param(
            {
                "AZURE_STORAGE_CONNECTION_STRING": f"AccountKey={KEY};"
                "EndpointSuffix=core.windows.net"
            },
            "names an EndpointSuffix but no AccountName",
            id="a suffix without an account",
        ),
        pytest.param(
            {"AZURE_STORAGE_ENDPOINT": "http://127.0.0.1:10000", "AZURE_STORAGE_ACCOUNT_KEY": KEY},
            "must name the account",
            id="an emulator's endpoint without the account",
        ),
        pytest.param(
            {"AZURE_STORAGE_ENDPOINT": "http://127.0.0.1:10000/devstoreaccount1/exports"},
            "must end with the account name",
            id="an endpoint naming a container",
        ),
        pytest.param(
            {"AZURE_STORAGE_ENDPOINT": f"https://acct.blob.core.windows.net/?{SAS}"},
            "must name only a scheme, a host and the account",
            id="an endpoint with a SAS",
        ),
        pytest.param(
            {"AZURE_STORAGE_ENDPOINT": f"https://user:{KEY}@acct.blob.core.windows.net"},
            "must name only a scheme, a host and the account",
            id="an endpoint with a password",
        ),
        pytest.param(
            {"AZURE_STORAGE_ENDPOINT": "ftp://acct.blob.core.windows.net"},
            "must be an http:// or https:// URL",
            id="not http",
        ),
        pytest.param(
            {
                "AZURE_STORAGE_ACCOUNT_NAME": "acct",
                "AZURE_STORAGE_ENDPOINT": "https://other.blob.core.windows.net",
            },
            "is the endpoint of account 'other', not of 'acct'",
            id="an endpoint of another account",
        ),
    ],
)
def test_unusable_settings_are_refused_without_their_secrets(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message) as info:
        azure_settings(environ)
    text = str(info.value)
    for secret in (KEY, KEY.rstrip("="), SAS, SIG, urllib.parse.quote(SIG)):
        assert secret not in text


def test_the_secrets_include_the_parts_of_a_connection_string() -> None:
    connection = f"BlobEndpoint=https://acct.blob.core.windows.net;SharedAccessSignature={SAS}"
    assert azure_secrets({"AZURE_STORAGE_CONNECTION_STRING": connection}) == {SAS, SIG}
    connection = f"AccountName=acct;AccountKey={KEY}"
    assert azure_secrets({"AZURE_STORAGE_CONNECTION_STRING": connection}) == {KEY}
    assert azure_secrets({"AZURE_STORAGE_SAS_TOKEN": f"?{SAS}"}) == {SIG}
    # Not parsed, so scrubbed whole only (it is a secret variable).
    assert azure_secrets({"AZURE_STORAGE_CONNECTION_STRING": f"AccountName=a;{KEY}"}) == set()


def test_a_fetch_with_unusable_settings_names_the_location_and_keeps_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ENDPOINT", "AZURE_STORAGE_SAS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    connection = f"AccountName=acct;AccountKey={KEY};BlobEndpoint=http://127.0.0.1:10000"
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection)
    with pytest.raises(FetchError) as info:
        list(Fetcher(timeout=1, retries=0).frames("az://exports/one/rows.csv"))
    text = "".join(traceback.format_exception(info.value))
    assert "csv from az://exports/one/rows.csv: its settings cannot be used" in str(info.value)
    assert "AZURE_STORAGE_CONNECTION_STRING must name the account" in str(info.value)
    assert KEY not in text and connection not in text
    assert not info.value.retryable
