"""Checks on a model file's zip container before skops reads anything from it.

A zip can declare gigabytes behind a few kilobytes (a decompression bomb) and can carry
members skops never reads, such as a pickled `.npy` waiting for a later exploit to open it.
Both are refused from the central directory alone, before any member is inflated.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from shared.errors import bounded_list

SCHEMA_MEMBER = "schema.json"
LOCAL_HEADER = b"PK\x03\x04"
END_OF_DIRECTORY = b"PK\x05\x06"
FILE_LOADERS = frozenset({"NdArrayNode", "SparseMatrixNode"})
"""skops nodes that read a member; bytes nodes (which could carry anything) are refused."""
REFUSED_LOADERS = frozenset({"BytesNode", "BytearrayNode"})
SPARSE_MEMBERS = frozenset(
    f"{name}.npy" for name in ("data", "indices", "indptr", "format", "shape", "row", "col")
)


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds on what a model file's zip may declare."""

    max_members: int = 100_000
    max_uncompressed_bytes: int = 1024 * 1024 * 1024
    max_schema_bytes: int = 64 * 1024 * 1024


class ArchiveRefused(ValueError):
    """The zip container breaks a limit or holds members the model does not use."""


def check_archive(data: bytes, limits: ArchiveLimits = ArchiveLimits()) -> None:
    """Refuse bombs and unreferenced members; a non-zip is left to skops to describe."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError):
        return
    with archive:
        _check_nothing_around(data, archive)
        members = archive.infolist()
        if len(members) > limits.max_members:
            raise ArchiveRefused(
                f"the model file has {len(members)} zip members; at most "
                f"{limits.max_members} are accepted"
            )
        declared = sum(member.file_size for member in members)
        if declared > limits.max_uncompressed_bytes:
            raise ArchiveRefused(
                f"the model file declares {declared} bytes uncompressed; at most "
                f"{limits.max_uncompressed_bytes} are accepted"
            )
        names = [member.filename for member in members]
        if len(set(names)) != len(names):
            raise ArchiveRefused("the model file has zip members with the same name")
        if SCHEMA_MEMBER not in names:
            return
        schema_size = archive.getinfo(SCHEMA_MEMBER).file_size
        if schema_size > limits.max_schema_bytes:
            raise ArchiveRefused(
                f"the model file's schema.json is {schema_size} bytes; at most "
                f"{limits.max_schema_bytes} are accepted"
            )
        try:
            schema = json.loads(archive.read(SCHEMA_MEMBER))
        except (ValueError, RecursionError, zipfile.BadZipFile, OSError):
            return
        referenced, sparse = referenced_members(schema)
        for name in sparse & set(names):
            _check_sparse_member(archive, name, limits)
    unreferenced = sorted(set(names) - {SCHEMA_MEMBER} - referenced)
    if unreferenced:
        raise ArchiveRefused(
            "the model file holds zip members its schema does not reference: "
            + bounded_list([repr(name[:100]) for name in unreferenced])
        )


def referenced_members(schema: Any) -> tuple[set[str], set[str]]:
    """Members the schema's file-reading nodes point at, and which of them are sparse."""
    found: set[str] = set()
    sparse: set[str] = set()
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            loader = node.get("__loader__")
            if loader in REFUSED_LOADERS:
                raise ArchiveRefused("bytes objects are not accepted in model files")
            if loader in FILE_LOADERS and isinstance(node.get("file"), str):
                found.add(node["file"])
                if loader == "SparseMatrixNode":
                    sparse.add(node["file"])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found, sparse


def _check_nothing_around(data: bytes, archive: zipfile.ZipFile) -> None:
    """The zip is the whole file: no prefix (a pickle/zip polyglot) and nothing after it."""
    first = min((member.header_offset for member in archive.infolist()), default=0)
    ends_cleanly = data[-22:-18] == END_OF_DIRECTORY and not archive.comment
    if not data.startswith(LOCAL_HEADER) or first != 0 or not ends_cleanly:
        raise ArchiveRefused("the model file holds data before or after its zip archive")


def _check_sparse_member(archive: zipfile.ZipFile, name: str, limits: ArchiveLimits) -> None:
    """A sparse matrix is a zip inside the zip: its members are checked like the outer ones."""
    if archive.getinfo(name).file_size > limits.max_uncompressed_bytes:
        return  # the outer total already refuses it
    try:
        inner = zipfile.ZipFile(io.BytesIO(archive.read(name)))
    except (zipfile.BadZipFile, ValueError, OSError):
        return  # skops reports a broken member
    with inner:
        inner_names = set(inner.namelist())
        if not inner_names <= SPARSE_MEMBERS or len(inner_names) != len(inner.infolist()):
            raise ArchiveRefused(f"the sparse matrix {name[:100]!r} holds unexpected members")
        declared = sum(member.file_size for member in inner.infolist())
        if declared > limits.max_uncompressed_bytes:
            raise ArchiveRefused(
                f"the sparse matrix {name[:100]!r} declares {declared} bytes uncompressed"
            )
