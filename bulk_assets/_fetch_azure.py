"""How ``az://`` locations reach their storage account: the settings Azure's own SDKs and the
``az`` CLI read from the environment, turned into ``pyarrow.fs.AzureFileSystem`` options.

In order of precedence:

- ``AZURE_STORAGE_CONNECTION_STRING``: the account's connection string as the portal shows it
  (``AccountName``, ``AccountKey`` or ``SharedAccessSignature``, and ``BlobEndpoint`` or
  ``DefaultEndpointsProtocol`` with ``EndpointSuffix``), or ``UseDevelopmentStorage=true``
  for Azurite on its default port. When set, it is the whole configuration: the variables
  below are not read, as the Azure SDKs do not read them beside a connection string either.
- ``AZURE_STORAGE_ACCOUNT_NAME`` with ``AZURE_STORAGE_ACCOUNT_KEY`` or
  ``AZURE_STORAGE_SAS_TOKEN``; without either, Azure's default credential chain
  (``AZURE_CLIENT_ID``/``AZURE_TENANT_ID``/``AZURE_CLIENT_SECRET``, workload or managed
  identity, ``az login``).
- ``AZURE_STORAGE_ENDPOINT``: the account's blob endpoint, for an emulator, a sovereign cloud
  or a private endpoint (as object_store, and so Polars and delta-rs, read it).

An endpoint names the account either in its host, ``https://ACCOUNT.blob.core.chinacloudapi.cn``
(Azure's own form), or in its path, ``http://127.0.0.1:10000/ACCOUNT`` (Azurite's): Arrow's
client builds its URLs in one of those two ways, so a custom domain that names no account
cannot be used. The account name may then be left out.

The account key, the SAS token and the connection string are secrets: :func:`azure_secrets`
with :data:`SECRET_ENV` list them, parsed parts included, so that no message shows them.
"""

from __future__ import annotations

import ipaddress
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["SECRET_ENV", "AzureSettings", "azure_secrets", "azure_settings"]

CONNECTION_STRING = "AZURE_STORAGE_CONNECTION_STRING"
ENDPOINT = "AZURE_STORAGE_ENDPOINT"
# Azurite's documented account and key: public, the same on every machine.
_AZURITE_ACCOUNT = "devstoreaccount1"
_AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_AZURITE_ENDPOINT = f"http://127.0.0.1:10000/{_AZURITE_ACCOUNT}"
#: The variables whose values no message may show, whole.
SECRET_ENV = (
    CONNECTION_STRING,
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_SECRET",
)


@dataclass(frozen=True, slots=True)
class AzureSettings:
    """Keyword arguments of ``pyarrow.fs.AzureFileSystem``; empty strings are left unset."""

    account_name: str
    account_key: str = ""
    sas_token: str = ""
    blob_storage_authority: str = ""
    blob_storage_scheme: str = ""
    dfs_storage_authority: str = ""
    dfs_storage_scheme: str = ""

    def options(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in self.__slots__ if getattr(self, name)}


def azure_settings(environ: Mapping[str, str] = os.environ) -> AzureSettings:
    """The settings ``environ`` names; a ValueError (quoting no value) when they are unusable."""
    if text := environ.get(CONNECTION_STRING, "").strip():
        where = CONNECTION_STRING
        fields = _connection_fields(text)
        if fields.get("usedevelopmentstorage", "").lower() == "true":
            fields = {"accountkey": _AZURITE_KEY, "blobendpoint": _AZURITE_ENDPOINT} | fields
        account = fields.get("accountname", "")
        key = fields.get("accountkey", "")
        sas = fields.get("sharedaccesssignature", "")
        endpoint = fields.get("blobendpoint", "")
        if not endpoint and "endpointsuffix" in fields:
            protocol = fields.get("defaultendpointsprotocol", "https")
            if not account:
                raise ValueError(f"{where} names an EndpointSuffix but no AccountName")
            endpoint = f"{protocol}://{account}.blob.{fields['endpointsuffix']}"
    else:
        where = ENDPOINT
        account = environ.get("AZURE_STORAGE_ACCOUNT_NAME", "")
        key = environ.get("AZURE_STORAGE_ACCOUNT_KEY", "")
        sas = environ.get("AZURE_STORAGE_SAS_TOKEN", "")
        endpoint = environ.get(ENDPOINT, "").strip()
    if key and sas:
        raise ValueError(
            f"{CONNECTION_STRING} names both an AccountKey and a SharedAccessSignature"
            if where == CONNECTION_STRING
            else "set AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_TOKEN, not both"
        )
    if sas:
        # Arrow's client takes the token with the "?" that starts a query (without it, the
        # requests name a wrong resource); the portal shows it without, the az CLI with.
        sas = "?" + sas.lstrip("?")
    if not endpoint:
        if not account:
            raise ValueError(
                f"set {CONNECTION_STRING}, or AZURE_STORAGE_ACCOUNT_NAME (with "
                "AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_TOKEN)"
            )
        return AzureSettings(account, key, sas)
    named, scheme, authority = _endpoint(endpoint, where)
    if account and account != named:
        raise ValueError(f"{where} is the endpoint of account {named!r}, not of {account!r}")
    # The Data Lake endpoint of an account sits beside its blob endpoint: ".dfs." where the
    # host says ".blob.", the same host and port on an emulator.
    dfs = authority.replace(".blob.", ".dfs.", 1) if authority.startswith(".") else authority
    return AzureSettings(named, key, sas, authority, scheme, dfs, scheme)


def azure_secrets(environ: Mapping[str, str] = os.environ) -> frozenset[str]:
    """The secrets inside the settings of :data:`SECRET_ENV`, as they are parsed out: a
    client's error may quote the account key without the connection string around it."""
    found: set[str] = set()
    text = environ.get(CONNECTION_STRING, "")
    try:
        fields = _connection_fields(text) if text.strip() else {}
    except ValueError:
        fields = {}
    found.update(fields.get(name, "") for name in ("accountkey", "sharedaccesssignature"))
    for sas in (environ.get("AZURE_STORAGE_SAS_TOKEN", ""), fields.get("sharedaccesssignature")):
        # The signature alone, as a request URL would show it between other parameters.
        found.update(v for k, v in urllib.parse.parse_qsl(sas or "") if k == "sig")
    found.discard("")
    return frozenset(found)


def _connection_fields(text: str) -> dict[str, str]:
    """``Name=value;...`` with names case-folded, as Azure's SDKs read them (a value, such as
    a base64 key or a SAS token, may itself hold ``=``)."""
    fields = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        name, equals, value = part.partition("=")
        if not equals or not name.strip():
            # The part may be a key pasted without its name: never quote it.
            raise ValueError(f"{CONNECTION_STRING} is not a list of Name=value pairs")
        fields[name.strip().lower()] = value.strip()
    return fields


def _endpoint(url: str, where: str) -> tuple[str, str, str]:
    """(account, scheme, authority) of a blob endpoint URL, in Arrow's terms: an authority
    starting with "." follows the account name in the host, any other one is a host whose
    path names the account."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (parsing it rejects a port that is not a number)
    except ValueError:
        raise ValueError(f"{where} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{where} must be an http:// or https:// URL")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"{where} must name only a scheme, a host and the account")
    path = parts.path.strip("/")
    if path:
        if "/" in path:
            raise ValueError(f"{where} must end with the account name, not a container or key")
        return urllib.parse.unquote(path), parts.scheme, parts.netloc
    account, dot, rest = parts.netloc.partition(".")
    if not dot or not rest or _is_ip(parts.hostname):
        raise ValueError(
            f"{where} must name the account: https://ACCOUNT.blob.HOST or http://HOST:PORT/ACCOUNT"
        )
    return account, parts.scheme, "." + rest


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
