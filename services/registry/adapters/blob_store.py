"""Content-addressed file store for artifacts and dataset snapshots."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path


class BlobIntegrityError(Exception):
    """A stored blob's bytes no longer hash to its name."""


class BlobStore:
    """Blobs named by their SHA-256, written atomically and checked on every read."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, sha256: str) -> Path:
        if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self._root / sha256[:2] / sha256[2:]

    def put(self, data: bytes) -> str:
        """Store `data` (a no-op when already stored) and return its SHA-256."""
        sha256 = hashlib.sha256(data).hexdigest()
        path = self._path(sha256)
        if path.exists():
            return sha256
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        return sha256

    def get(self, sha256: str) -> bytes:
        """The blob's bytes, after checking they still hash to `sha256`."""
        path = self._path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise BlobIntegrityError(f"blob {sha256} is missing from the store") from None
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha256:
            raise BlobIntegrityError(f"blob {sha256} is corrupt: its bytes hash to {actual}")
        return data

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).exists()
