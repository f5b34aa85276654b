"""Datasets outside the defs folder: YAML files, Python modules and files, ``@dataset``.

The defs folder (``bulk_assets/defs/``, see :mod:`bulk_assets.component`) is where datasets
live; these environment variables still add datasets from elsewhere, read when the code
location loads (never at import), through ``bulk_assets/defs/environment.py``:

- ``BULK_ASSETS_DATASETS``: YAML files (``*.yaml``/``*.yml``) and Python files (``*.py``), or
  folders of them, separated by ``os.pathsep``; default: ``datasets/`` in the project root
  when it exists.
- ``BULK_ASSETS_MODULES``: importable Python modules, comma-separated.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import yaml
from pydantic import ValidationError

from .specs import DatasetSpec, FetchSource, GeneratedSource

__all__ = [
    "DatasetSpecError",
    "dataset",
    "discover",
    "import_function",
    "specs_from_module",
    "specs_from_path",
    "specs_from_yaml",
]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_YAML = (".yaml", ".yml")


class DatasetSpecError(ValueError):
    """A dataset declaration that cannot be loaded; names the file and the dataset."""


def dataset(
    *, table: str, name: str | None = None, **options: Any
) -> Callable[[Callable[..., Any]], DatasetSpec]:
    """Declare a generated dataset in Python: the decorated function makes the rows of one
    partition. It takes a :class:`~bulk_assets.Partition` (or nothing, unpartitioned) and
    returns a DataFrame or yields DataFrames, tuples or dicts. ``options`` are the fields of
    :class:`~bulk_assets.DatasetSpec`.

    Examples:
        .. code-block:: python

            from bulk_assets import ChunkPartitions, dataset

            @dataset(table="squares", partitions=ChunkPartitions(column="n", size=1000, count=10))
            def squares(part):
                return pd.DataFrame({"n": range(part.start, part.end)}).assign(sq=lambda d: d.n**2)
    """

    def declare(function: Callable[..., Any]) -> DatasetSpec:
        fields = {
            "name": name or function.__name__,
            "table": table,
            "description": (function.__doc__ or "").strip() or None,
            **options,
            "source": GeneratedSource(function=function),
        }
        try:
            return DatasetSpec.model_validate(fields)
        except ValidationError as exc:
            raise DatasetSpecError(
                f"dataset {fields['name']} ({function.__module__}.{function.__qualname__}): "
                f"{_errors(exc)}"
            ) from None

    return declare


def specs_from_module(module: ModuleType | str) -> list[DatasetSpec]:
    """Every DatasetSpec defined at the top level of ``module``."""
    if isinstance(module, str):
        module = importlib.import_module(module)
    return [value for value in vars(module).values() if isinstance(value, DatasetSpec)]


def specs_from_yaml(path: Path) -> list[DatasetSpec]:
    """The datasets of one YAML file: a mapping for one dataset, or ``datasets:`` a list."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DatasetSpecError(f"{path}: cannot read YAML: {exc}") from None
    if document is None:
        return []
    entries = document.get("datasets") if isinstance(document, dict) else None
    if entries is None:
        entries = [document]
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise DatasetSpecError(
            f"{path}: expected a dataset mapping or 'datasets:' with a list of them, got "
            f"{type(document).__name__}"
        )
    return [_from_yaml_entry(entry, path) for entry in entries]


def specs_from_path(path: Path) -> list[DatasetSpec]:
    """The datasets of a YAML or Python file, or of every such file in a folder (sorted,
    not recursive; files starting with '_' are skipped)."""
    if path.is_dir():
        return [
            spec
            for child in sorted(path.iterdir())
            if child.is_file() and not child.name.startswith(("_", "."))
            for spec in specs_from_path(child)
        ]
    if path.suffix in _YAML:
        return specs_from_yaml(path)
    if path.suffix == ".py":
        return specs_from_module(_import_file(path))
    return []


def discover(
    environ: Mapping[str, str] | None = None, *, root: Path | None = None
) -> list[DatasetSpec]:
    """The datasets named by ``BULK_ASSETS_DATASETS`` (default: ``root/datasets`` when it
    exists) and ``BULK_ASSETS_MODULES``; relative paths are read against ``root`` (default:
    the working directory). Two datasets with one name are an error."""
    env = os.environ if environ is None else environ
    base = Path.cwd() if root is None else root
    specs: list[tuple[DatasetSpec, str]] = []
    paths = env.get("BULK_ASSETS_DATASETS")
    if paths is None:
        paths = str(base / "datasets") if (base / "datasets").is_dir() else ""
    for entry in filter(None, paths.split(os.pathsep)):
        path = (base / Path(entry).expanduser()).resolve()
        if not path.exists():
            raise DatasetSpecError(f"BULK_ASSETS_DATASETS names {path}, which does not exist")
        specs += [(s, str(path)) for s in specs_from_path(path)]
    for module in filter(None, (m.strip() for m in env.get("BULK_ASSETS_MODULES", "").split(","))):
        specs += [(s, module) for s in specs_from_module(module)]
    return _unique(specs)


def _unique(specs: Iterable[tuple[DatasetSpec, str]]) -> list[DatasetSpec]:
    seen: dict[str, str] = {}
    out = []
    for spec, origin in specs:
        if spec.name in seen:
            if seen[spec.name] == origin:
                continue  # one module reached twice, e.g. by path and by name
            raise DatasetSpecError(
                f"two datasets are named {spec.name!r}: in {seen[spec.name]} and in {origin}"
            )
        seen[spec.name] = origin
        out.append(spec)
    return out


def _from_yaml_entry(entry: dict[str, Any], path: Path) -> DatasetSpec:
    name = entry.get("name", "?")
    entry = dict(entry)
    source = entry.get("source")
    try:
        if isinstance(source, dict):
            entry["source"] = _resolve_source(dict(source), path.parent)
        return DatasetSpec.model_validate(entry)
    except ValidationError as exc:
        raise DatasetSpecError(f"{path}: dataset {name}: {_errors(exc)}") from None
    except (ImportError, AttributeError, ValueError) as exc:
        raise DatasetSpecError(f"{path}: dataset {name}: {exc}") from None


def _resolve_source(source: dict[str, Any], base: Path) -> GeneratedSource | FetchSource:
    kind = source.get("kind", "fetch" if "location" in source else "generated")
    source["kind"] = kind
    if kind == "generated":
        function = source.get("function")
        if isinstance(function, str):
            source["function"] = import_function(function)
        return GeneratedSource.model_validate(source)
    location = source.get("location")
    if isinstance(location, str) and not _URL.match(location):
        source["location"] = str((base / location).resolve())
    return FetchSource.model_validate(source)


def import_function(reference: str) -> Callable[..., Any]:
    module_name, _, attribute = reference.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"function must be 'package.module:function', got {reference!r}")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    if isinstance(target, DatasetSpec):  # a decorated generator: its function
        source = target.source
        if isinstance(source, GeneratedSource) and callable(source.function):
            return source.function
    if not callable(target):
        raise ValueError(f"{reference} is a {type(target).__name__}, not a function")
    return cast(Callable[..., Any], target)


def _import_file(path: Path) -> ModuleType:
    name = f"bulk_assets_datasets.{re.sub(r'[^0-9A-Za-z_]', '_', path.stem)}"
    existing = sys.modules.get(name)
    if existing is not None and getattr(existing, "__file__", None) == str(path):
        return existing
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise DatasetSpecError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise DatasetSpecError(f"{path}: importing it failed: {exc!r}") from exc
    return module


def _errors(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc']) or '(spec)'}: {error['msg']}"
        for error in exc.errors()
    )
