"""The files a location names: one file, a directory (every file of the format below it, a
hive tree ``year=2026/month=03/...`` included) or a glob (``data/*.csv``, ``exports/**/*.parquet``),
on the local disk or in an object store, listed in sorted order so that every run reads them
in the same order.

In a glob, ``*`` and ``?`` stay within one path segment, ``**`` spans any number of them and
``[abc]`` is a character class. In a directory, names starting with ``.`` or ``_`` (``_SUCCESS``,
``.crc`` files) are left out, as Arrow's own dataset discovery does, and so are files of
another format.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

import pyarrow.fs as pafs

from ._fetch_errors import Where, redact
from ._fetch_stores import ObjectStore, store_error

__all__ = ["FileSet", "has_glob", "list_files"]

_GLOB = re.compile(r"[*?\[]")


@dataclass(frozen=True, slots=True)
class FileSet:
    """Files of one filesystem, sorted; ``base`` is the directory hive keys are read below
    and ``location`` turns a path back into what a message shows (credentials masked)."""

    filesystem: pafs.FileSystem
    paths: tuple[str, ...]
    base: str
    location: Callable[[str], str]
    store: ObjectStore | None = None

    def where(self, path: str, format: str) -> Where:
        return Where(redact(self.location(path)), format)


def has_glob(path: str) -> bool:
    return _GLOB.search(path) is not None


def list_files(
    filesystem: pafs.FileSystem,
    path: str,
    where: Where,
    *,
    extensions: tuple[str, ...],
    location: Callable[[str], str],
    store: ObjectStore | None = None,
) -> FileSet:
    """The files ``path`` names in ``filesystem``.

    Raises:
        FetchError: nothing matches, the path does not exist, or the store refused the listing.
    """
    doing = f"{'listing' if has_glob(path) else 'looking up'} {where.location}"
    try:
        if has_glob(path):
            base = _prefix(path)
            pattern = _glob_regex(path)
            found = [
                info.path
                for info in _walk(filesystem, base)
                if info.type == pafs.FileType.File and pattern.fullmatch(info.path)
            ]
            what = "no file matches the pattern"
        else:
            info = filesystem.get_file_info(path)
            if info.type == pafs.FileType.File:
                return FileSet(filesystem, (path,), _parent(path), location, store)
            if info.type != pafs.FileType.Directory:
                raise FileNotFoundError(path)
            base = path.rstrip("/")
            found = [
                info.path
                for info in _walk(filesystem, base)
                if info.type == pafs.FileType.File
                and not _hidden(info.path, base)
                and _suffix_in(info.path, extensions)
            ]
            what = f"the directory holds no {'/'.join(extensions)} file"
    except FileNotFoundError:
        if store is not None:
            raise where.error(f"no such object or prefix in {store.title}") from None
        raise where.error("cannot open it: No such file or directory") from None
    except OSError as exc:
        if store is None:
            raise where.error(f"{doing} failed: {exc}") from exc
        raise store_error(store, where, doing + " failed", exc) from None
    if not found:
        raise where.error(what)
    return FileSet(filesystem, tuple(sorted(found)), base, location, store)


def _walk(filesystem: pafs.FileSystem, base: str) -> list[pafs.FileInfo]:
    infos: list[pafs.FileInfo] = filesystem.get_file_info(
        pafs.FileSelector(base, recursive=True, allow_not_found=True)
    )
    return infos


def _prefix(path: str) -> str:
    """The directory before the first segment with a glob character."""
    parts = PurePosixPath(path).parts
    fixed = []
    for part in parts:
        if has_glob(part):
            break
        fixed.append(part)
    return str(PurePosixPath(*fixed)) if fixed else "."


def _parent(path: str) -> str:
    return str(PurePosixPath(path).parent)


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (close := pattern.find("]", i + 2)) != -1:
            body = pattern[i + 1 : close]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append(f"[{body}]")
            i = close + 1
            continue
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out))


def _hidden(path: str, base: str) -> bool:
    relative = (
        PurePosixPath(path).relative_to(base) if path.startswith(base) else PurePosixPath(path)
    )
    return any(part.startswith((".", "_")) for part in relative.parts)


def _suffix_in(path: str, extensions: tuple[str, ...]) -> bool:
    name = path.lower().removesuffix(".gz")
    return name.endswith(extensions)
