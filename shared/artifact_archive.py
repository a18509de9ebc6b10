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

SCHEMA_MEMBER = "schema.json"
MAX_LISTED = 10


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
    unreferenced = sorted(set(names) - {SCHEMA_MEMBER} - referenced_members(schema))
    if unreferenced:
        shown = ", ".join(repr(name[:100]) for name in unreferenced[:MAX_LISTED])
        more = len(unreferenced) - MAX_LISTED
        raise ArchiveRefused(
            "the model file holds zip members its schema does not reference: "
            + shown
            + (f" and {more} more" if more > 0 else "")
        )


def referenced_members(schema: Any) -> set[str]:
    """Names of the zip members the skops schema's nodes point at (their `file` field)."""
    found: set[str] = set()
    pending = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if "__loader__" in node and isinstance(node.get("file"), str):
                found.add(node["file"])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return found
