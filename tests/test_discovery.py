"""Datasets plug in without editing the package: YAML files, Python files and modules named
by environment variables become assets that load."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pytest
from dagster import DagsterInstance, materialize

from bulk_assets import (
    DatasetSpec,
    DatasetSpecError,
    Fetcher,
    FetchSource,
    build_definitions,
    discover,
)
from bulk_assets.partitions import partition_for_key
from bulk_assets.sources import _format_location
from resources import PostgresBulkWriter

NO_EXAMPLES: dict[str, str] = {}


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder of the user's own: a CSV with its YAML, a YAML naming a generator function in
    an importable module, and a Python file declaring a dataset."""
    folder = tmp_path / "datasets"
    folder.mkdir()
    (tmp_path / "lib").mkdir()
    write(
        tmp_path / "lib" / "my_generators.py",
        """
        import pandas as pd

        def squares(part):
            n = range(part.start, part.end)
            return pd.DataFrame({"n": list(n), "sq": [i * i for i in n]})
        """,
    )
    write(
        tmp_path / "lib" / "my_datasets.py",
        """
        import pandas as pd
        from bulk_assets import dataset

        @dataset(table="colours", create=True, key_columns=["name"], mode="upsert")
        def colours():
            return pd.DataFrame({"name": ["red", "green"], "hex": ["#f00", "#0f0"]})
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path / "lib"))
    write(folder / "prices.csv", "sku,price\na-1,9.5\nb-2,12.25\nc-3,0.99\n")
    write(
        folder / "prices.yaml",
        """
        name: prices
        table: prices
        create: true
        source:
          location: prices.csv
          dtypes: {price: float64}
        checks:
          unique: [sku]
        """,
    )
    write(
        folder / "squares.yaml",
        """
        datasets:
          - name: squares
            table: squares
            group: maths
            ddl: CREATE TABLE IF NOT EXISTS squares (n bigint PRIMARY KEY, sq bigint)
            partitions: {kind: chunks, column: n, size: 50, count: 4, start: 0}
            source:
              function: my_generators:squares
        """,
    )
    write(
        folder / "cubes.py",
        """
        import pandas as pd
        from bulk_assets import ChunkPartitions, dataset

        @dataset(table="cubes", create=True, group="maths",
                 partitions=ChunkPartitions(column="n", size=10, count=3))
        def cubes(part):
            return pd.DataFrame({"n": range(part.start, part.end)}).assign(c=lambda d: d.n ** 3)
        """,
    )
    write(folder / "_ignored.yaml", "not: [valid")
    return folder


def test_yaml_python_files_and_modules_become_assets(
    plugins: Path, search_path_dsn: str, db: Any, schema: str
) -> None:
    env = {
        **NO_EXAMPLES,
        "BULK_ASSETS_DATASETS": str(plugins),
        "BULK_ASSETS_MODULES": "my_datasets",
    }
    specs = {spec.name: spec for spec in discover(env)}
    assert set(specs) == {"prices", "squares", "cubes", "colours"}
    assert specs["squares"].group == "maths"
    defs = build_definitions(
        list(specs.values()),
        resources={"writer": PostgresBulkWriter(dsn=search_path_dsn), "fetcher": Fetcher()},
    )
    graph = defs.get_repository_def().asset_graph
    assert {k.path[0] for k in graph.get_all_asset_keys()} == set(specs)
    instance = DagsterInstance.ephemeral()
    for name, key in [
        ("prices", None),
        ("colours", None),
        ("squares", "050-099"),
        ("cubes", "11-20"),
    ]:
        result = materialize(
            [defs.get_assets_def(name)],
            resources={"writer": PostgresBulkWriter(dsn=search_path_dsn), "fetcher": Fetcher()},
            instance=instance,
            partition_key=key,
        )
        assert result.success, name
    assert [tuple(r) for r in db.fetch(f'SELECT sku, price FROM "{schema}".prices ORDER BY 1')] == [
        ("a-1", 9.5),
        ("b-2", 12.25),
        ("c-3", 0.99),
    ]
    assert db.fetchval(f'SELECT count(*) FROM "{schema}".colours') == 2
    assert db.fetchval(f'SELECT sum(sq) FROM "{schema}".squares') == sum(
        i * i for i in range(50, 100)
    )
    assert db.fetchval(f"SELECT min(n) || '-' || max(n) FROM \"{schema}\".cubes") == "11-20"


def test_default_folder_is_datasets_in_the_project_root(
    plugins: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert {s.name for s in discover(NO_EXAMPLES, root=plugins.parent)} == {
        "prices",
        "squares",
        "cubes",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\ntable: t\nsource: {location: a.csv}\nmodee: copy\n", r"modee: Extra inputs"),
        ("name: x\ntable: t\nmode: upsert\nsource: {location: a.csv}\n", "needs key_columns"),
        ("name: bad-name\ntable: t\nsource: {location: a.csv}\n", "letters, digits"),
        ("name: x\ntable: t\nsource: {function: nowhere_module:f}\n", "No module named"),
        ("name: x\ntable: t\nsource: {function: no_colon}\n", "package.module:function"),
        (
            "name: x\ntable: t\nschedule: '0 * * * *'\nsource: {location: a.csv}\n"
            "partitions: {kind: chunks, column: id, size: 1, count: 2}\n",
            "cannot be scheduled|no partition for a schedule",
        ),
        (
            "name: x\ntable: t\nsource: {location: 'a{start.__class__}.csv'}\n"
            "partitions: {kind: chunks, column: id, size: 1, count: 2}\n",
            "no attribute or index access",
        ),
        (
            "name: x\ntable: t\nsource: {location: 'a{end[0]}.csv'}\n"
            "partitions: {kind: chunks, column: id, size: 1, count: 2}\n",
            "no attribute or index access",
        ),
        ("name: x\ntable: t\nsource: {location: 'a{x.csv'}\n", "literal brace"),
        ("name: x\ntable: t\nsource: {location: 'a{start}.csv'}\n", "no partitions to fill"),
        (
            "name: x\ntable: t\nsource: {location: 'a{start!r}.csv'}\n"
            "partitions: {kind: chunks, column: id, size: 1, count: 2}\n",
            "conversions",
        ),
        (
            "name: x\ntable: t\nsource: {location: 'a{start:%Y}.csv'}\n"
            "partitions: {kind: chunks, column: id, size: 1, count: 2}\n",
            "does not apply to {start}",
        ),
        ("- 1\n- 2\n", "expected a dataset mapping"),
        (
            f"name: x\ntable: {'t' * 64}\nsource: {{location: a.csv}}\n",
            "table.*64 bytes long; PostgreSQL keeps only the first 63",
        ),
        ("name: [unclosed\n", "cannot read YAML"),
    ],
)
def test_bad_declarations_name_the_file_and_the_problem(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(DatasetSpecError, match=expected) as caught:
        discover({**NO_EXAMPLES, "BULK_ASSETS_DATASETS": str(path)})
    assert str(path) in str(caught.value)


def test_two_datasets_with_one_name_are_refused(plugins: Path, tmp_path: Path) -> None:
    other = tmp_path / "more"
    other.mkdir()
    write(other / "p.yaml", "name: prices\ntable: p2\nsource: {location: x.csv}\n")
    with pytest.raises(DatasetSpecError, match="two datasets are named 'prices'"):
        discover({**NO_EXAMPLES, "BULK_ASSETS_DATASETS": f"{plugins}{os.pathsep}{other}"})


def test_missing_dataset_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetSpecError, match="does not exist"):
        discover({**NO_EXAMPLES, "BULK_ASSETS_DATASETS": str(tmp_path / "nope")})


@pytest.mark.parametrize(
    ("location", "partitions", "key", "expected"),
    [
        ("/d/{{raw}}.csv", None, None, "/d/{raw}.csv"),
        (
            "/d/{start:%Y/%m/%d}-{end:%d}.csv",
            {"kind": "daily", "column": "at", "start": "2024-01-01"},
            "2024-01-02",
            "/d/2024/01/02-03.csv",
        ),
        (
            "/d/{start:07d}_{partition_key}.csv",
            {"kind": "chunks", "column": "id", "size": 10, "count": 3},
            "0000011-0000020",
            "/d/0000011_0000011-0000020.csv",
        ),
    ],
)
def test_location_templates_fill_without_str_format(
    location: str, partitions: dict[str, Any] | None, key: str | None, expected: str
) -> None:
    spec = DatasetSpec.model_validate(
        {
            "name": "x",
            "table": "t",
            "source": {"kind": "fetch", "location": location},
            "partitions": partitions,
        }
    )
    assert isinstance(spec.source, FetchSource)
    assert _format_location(spec.source.location, partition_for_key(spec, key)) == expected
