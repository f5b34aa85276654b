"""s3:// locations against a real S3 API: moto in server mode on a free port, started and
stopped here, with IAM enforcement on so that wrong credentials are refused as AWS refuses
them. The fetch's client is pyarrow's own S3 client, configured from the environment as on a
run worker; nothing is mocked in the process under test."""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd
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

from bulk_assets import FetchError

boto3 = pytest.importorskip("boto3", reason="moto[server] (the test extra) brings boto3")
pytest.importorskip("moto.server", reason="the test extra's moto[server] runs the S3 API")

# Requests moto serves before it starts checking signatures: the three IAM calls that make
# the loader's user, its policy and its access key.
_UNSIGNED_SETUP_CALLS = 3


@dataclass(frozen=True)
class S3:
    endpoint: str
    key_id: str
    secret: str


@pytest.fixture(scope="module")
def moto() -> Iterator[S3]:
    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(_UNSIGNED_SETUP_CALLS)}
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with server(argv, port=port, name="moto server", env=env):
        endpoint = f"http://127.0.0.1:{port}"
        iam = boto3.client(
            "iam",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="setup",
            aws_secret_access_key="setup",
        )
        iam.create_user(UserName="loader")
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="loader", PolicyName="s3", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="loader")["AccessKey"]
        s3 = S3(endpoint, key["AccessKeyId"], key["SecretAccessKey"])
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=s3.key_id,
            aws_secret_access_key=s3.secret,
        )
        client.create_bucket(Bucket=BUCKET)
        for name, body in objects().items():
            client.put_object(Bucket=BUCKET, Key=name, Body=body)
        yield s3


@pytest.fixture
def aws(moto: S3, monkeypatch: pytest.MonkeyPatch) -> S3:
    """The run worker's environment: credentials and the S3-compatible endpoint."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", moto.key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", moto.secret)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto.endpoint)
    return moto


@pytest.mark.parametrize("name", ["rows.csv", "rows.parquet"])
def test_an_object_reads_like_a_file(aws: S3, name: str) -> None:
    got = read(f"s3://{BUCKET}/one/{name}", chunk_rows=7)
    pd.testing.assert_frame_equal(got, rows().astype(DTYPES))


@pytest.mark.parametrize("location", ["parts/part-*.csv", "parts/", "**/part-?.csv"])
def test_a_glob_or_a_prefix_reads_every_object_in_sorted_order(aws: S3, location: str) -> None:
    got = read(f"s3://{BUCKET}/{location}", format="csv")
    pd.testing.assert_frame_equal(got, parts_in_sorted_order().astype(DTYPES))


def test_a_missing_object_is_named(aws: S3) -> None:
    with pytest.raises(FetchError, match="no such object") as info:
        read(f"s3://{BUCKET}/one/missing.csv")
    assert f"s3://{BUCKET}/one/missing.csv" in str(info.value)
    with pytest.raises(FetchError, match="no file matches the pattern"):
        read(f"s3://{BUCKET}/one/nothing-*.csv")


@pytest.mark.parametrize("name", ["rows.csv", "rows.parquet", "part-*.csv"])
def test_refused_credentials_fail_clearly_and_keep_the_secret(
    aws: S3, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "wrong-secret-for-the-loader-0123456789"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", wrong)
    prefix = "parts" if "*" in name else "one"
    with pytest.raises(FetchError) as info:
        read(f"s3://{BUCKET}/{prefix}/{name}")
    error = info.value
    text = "".join(traceback.format_exception(error))
    assert f"s3://{BUCKET}/{prefix}/" in str(error)
    assert "the store refused the credentials: check AWS_ACCESS_KEY_ID" in str(error)
    assert wrong not in text and aws.secret not in text
    assert not error.retryable


def test_a_monthly_dataset_over_one_object_loads_its_month(
    aws: S3, search_path_dsn: str, db: Any, schema: str
) -> None:
    assert materialize_february(f"s3://{BUCKET}/one/rows.parquet", search_path_dsn)
    ids = [r["id"] for r in db.fetch(f'SELECT id FROM "{schema}".rows ORDER BY id')]
    assert ids == list(range(32, 60))


def test_an_unreachable_endpoint_is_transient_and_named(
    aws: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(FetchError, match="NETWORK_CONNECTION") as info:
        read(f"s3://{BUCKET}/one/rows.csv")
    assert f"csv from s3://{BUCKET}/one/rows.csv" in str(info.value)
    assert info.value.retryable  # the Fetcher's own retries apply, as for HTTP


@pytest.mark.parametrize("location", ["one/rows.parquet", "parts/part-*.csv", "parts/"])
def test_the_arrow_path_reads_objects_and_prefixes_and_keeps_a_slice(
    aws: S3, location: str
) -> None:
    ids = february_by_arrow(f"s3://{BUCKET}/{location}")
    assert ids == list(range(32, 60))
