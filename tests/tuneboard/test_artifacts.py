"""The checkpoint stores: a local directory and S3 (a local S3 server, see tests/s3_support)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests import s3_support
from tests.s3_support import Bucket
from tuneboard.artifacts import ArtifactStore, LocalStore, RemoteStore, join_url, open_store
from tuneboard.config import Settings

s3_endpoint, s3_bucket = s3_support.s3_endpoint, s3_support.s3_bucket  # fixtures

def _round_trip(store: ArtifactStore, scratch: Path) -> None:
    assert not store.exists("latest.pt")
    assert store.fetch("latest.pt", scratch) is None
    with pytest.raises(FileNotFoundError):
        store.load("latest.pt")
    store.save("latest.pt", b"first")
    store.save("latest.pt", b"second")
    assert store.exists("latest.pt") and store.load("latest.pt") == b"second"
    fetched = store.fetch("latest.pt", scratch)
    assert fetched is not None and fetched.read_bytes() == b"second"


def test_a_local_store_writes_whole_files(tmp_path: Path) -> None:
    store = open_store(join_url(str(tmp_path), "7", "3"))
    assert isinstance(store, LocalStore) and store.root == tmp_path / "7" / "3"
    _round_trip(store, tmp_path / "scratch")
    assert sorted(p.name for p in store.root.iterdir()) == ["latest.pt"]  # no partial file left
    assert open_store(f"file://{tmp_path}/7/3").load("latest.pt") == b"second"


def test_an_s3_store_round_trips_through_the_server(s3_bucket: Bucket, tmp_path: Path) -> None:
    url = join_url(f"{s3_bucket.url}/checkpoints/", "7", "3")
    assert url == f"{s3_bucket.url}/checkpoints/7/3"
    store = open_store(url)
    assert isinstance(store, RemoteStore)
    _round_trip(store, tmp_path / "scratch")
    assert s3_bucket.keys() == ["checkpoints/7/3/latest.pt"]
    assert (tmp_path / "scratch" / "latest.pt").read_bytes() == b"second"


def test_an_explicit_endpoint_is_used(
    s3_bucket: Bucket, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    store = open_store(f"{s3_bucket.url}/x", s3_endpoint=s3_bucket.endpoint)
    store.save("a.pt", b"data")
    assert s3_bucket.get("x/a.pt") == b"data"


@pytest.mark.parametrize("key", ["../escape.pt", "/abs.pt", "a/../../b", ""])
def test_keys_stay_inside_the_store(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="relative name inside the store"):
        LocalStore(tmp_path).save(key, b"x")


def test_the_artifact_url_defaults_to_the_home_and_refuses_unknown_schemes(
    tmp_path: Path,
) -> None:
    assert Settings(home=tmp_path).artifact_url == str((tmp_path / "checkpoints").resolve())
    assert Settings(home=tmp_path, artifact_url="s3://bucket/prefix").artifact_url == (
        "s3://bucket/prefix"
    )
    for bad in ("gs://bucket/prefix", "s3://"):
        with pytest.raises(ValidationError, match="neither a directory nor s3://bucket/prefix"):
            Settings(home=tmp_path, artifact_url=bad)
