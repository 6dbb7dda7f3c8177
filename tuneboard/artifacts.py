"""Where checkpoints are kept: a local directory or an object store (``s3://bucket/prefix``).

A trial's checkpoints live under one URL (``trials.checkpoint_path``) that its retry inherits.
With an object store that every worker host reaches, a retry resumes on whichever host takes it,
with no shared filesystem. What the stores guarantee:

- An object is written whole or not at all: a reader (or a crash) never sees half a checkpoint.
  A local write goes through a temporary file and a rename; an S3 PUT replaces the object at once.
- Keys are relative names (``latest.pt``), never leaving the store's prefix.

Remote stores go through fsspec (``s3fs`` for ``s3://``), installed with the worker extra; the
API never opens a store.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["ArtifactStore", "LocalStore", "RemoteStore", "join_url", "open_store"]


def _checked_key(key: str) -> str:
    parts = PurePosixPath(key).parts
    if not parts or key.startswith("/") or any(p in ("..", ".") for p in parts):
        raise ValueError(f"artifact key {key!r} must be a relative name inside the store")
    return key


class ArtifactStore(ABC):
    """Whole objects by key under one URL."""

    url: str

    @abstractmethod
    def save(self, key: str, data: bytes) -> None:
        """Write ``data`` as ``key``, replacing what was there."""

    @abstractmethod
    def load(self, key: str) -> bytes:
        """The bytes of ``key``; ``FileNotFoundError`` when there is none."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def fetch(self, key: str, directory: Path) -> Path | None:
        """A local file holding ``key`` (copied into ``directory`` unless the store is local
        already), or None when the store has no ``key``."""


class LocalStore(ArtifactStore):
    """A directory; created on the first write."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def _path(self, key: str) -> Path:
        return self.root / _checked_key(key)

    def save(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(data)
        os.replace(partial, path)

    def load(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def fetch(self, key: str, directory: Path) -> Path | None:
        path = self._path(key)
        return path if path.is_file() else None


class RemoteStore(ArtifactStore):
    """An fsspec filesystem (S3 and the like) under ``url``."""

    def __init__(self, url: str, fs: Any) -> None:
        self.url = url.rstrip("/")
        self.fs = fs

    def _path(self, key: str) -> str:
        return f"{self.url}/{_checked_key(key)}"

    def save(self, key: str, data: bytes) -> None:
        self.fs.pipe_file(self._path(key), data)

    def load(self, key: str) -> bytes:
        data: bytes = self.fs.cat_file(self._path(key))
        return data

    def exists(self, key: str) -> bool:
        path = self._path(key)
        # Another host may have written it since this process last listed the prefix.
        self.fs.invalidate_cache(path)
        return bool(self.fs.exists(path))

    def fetch(self, key: str, directory: Path) -> Path | None:
        if not self.exists(key):
            return None
        local = LocalStore(directory)
        local.save(key, self.load(key))
        return local.root / key


def _is_remote(url: str) -> bool:
    scheme, sep, _ = url.partition("://")
    return bool(sep) and scheme != "file"


def _local_path(url: str) -> Path:
    return Path(url.removeprefix("file://"))


def join_url(root: str, *parts: str) -> str:
    """``root`` (a directory or a store URL) with ``parts`` below it."""
    if _is_remote(root):
        return "/".join([root.rstrip("/"), *(_checked_key(p) for p in parts)])
    return str(_local_path(root).joinpath(*(_checked_key(p) for p in parts)))


def open_store(url: str, *, s3_endpoint: str = "") -> ArtifactStore:
    """The store at ``url``: a directory (``/path``, ``file:///path``) or ``s3://bucket/prefix``.
    ``s3_endpoint``: an S3-compatible server (MinIO); empty, s3fs's own choice, which honours
    ``AWS_ENDPOINT_URL``."""
    if not _is_remote(url):
        return LocalStore(_local_path(url))
    # Imported here: fsspec and s3fs come with the worker extra, and only workers open a
    # remote store.
    import fsspec

    protocol = url.partition("://")[0]
    options: dict[str, Any] = {}
    if protocol == "s3" and s3_endpoint:
        options["client_kwargs"] = {"endpoint_url": s3_endpoint}
    return RemoteStore(url, fsspec.filesystem(protocol, **options))
