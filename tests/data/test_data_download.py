"""Downloads through pooch against an HTTP server on 127.0.0.1: good hash, bad hash, never by default."""

from __future__ import annotations

import gzip
import hashlib
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

import antialias.data.idx as idx_mod
from antialias import DownloadError
from antialias import _download as core
from antialias.data import RemoteFile, RemoteSource, default_data_dir, fetch, load_dataset
from antialias.data.idx import IDX_SETS


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch, tmp_path_factory):
    """The cache root in a fresh folder; no waiting between retries."""
    monkeypatch.delenv(core.DATA_ENV, raising=False)
    monkeypatch.setenv(core.HOME_ENV, str(tmp_path_factory.mktemp("home")))
    monkeypatch.setattr(core, "_wait", lambda seconds: None)


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def idx_gz(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return gzip.compress(header + array.tobytes())


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_fetch_good_and_bad_hash(server, tmp_path):
    served, base = server
    (served / "a.bin").write_bytes(b"hello")
    dest = tmp_path / "cache"
    good = RemoteSource((base,), (RemoteFile("a.bin", sha256(b"hello")),))
    (path,) = fetch(good, dest)
    assert path == dest / "a.bin" and path.read_bytes() == b"hello"
    md5 = RemoteSource((base,), (RemoteFile("a.bin", "md5:" + hashlib.md5(b"hello").hexdigest()),))
    assert (
        fetch(md5, tmp_path / "md5")[0].read_bytes() == b"hello"
    )  # the "md5:" form pooch supports

    bad = RemoteSource((base,), (RemoteFile("a.bin", sha256(b"other")),))
    with pytest.raises(core.ChecksumError, match="SHA-256 mismatch: expected") as info:
        fetch(bad, tmp_path / "bad")
    assert "a.bin" in str(info.value) and "pass the folder that holds the files as `root=`" in str(info.value)
    assert sorted((tmp_path / "bad").iterdir()) == []  # nothing unverified is kept, no temp left

    (tmp_path / "damaged").mkdir()
    (tmp_path / "damaged" / "a.bin").write_bytes(b"hellO")
    with pytest.raises(core.ChecksumError, match=r"cached file .*a\.bin.* delete it and retry"):
        fetch(good, tmp_path / "damaged")
    assert (tmp_path / "damaged" / "a.bin").read_bytes() == b"hellO"  # the user's file is left alone


def test_fetch_falls_back_to_next_mirror(server, tmp_path):
    served, base = server
    (served / "a.bin").write_bytes(b"x")
    src = RemoteSource(("http://127.0.0.1:9/", base), (RemoteFile("a.bin", sha256(b"x")),))
    assert fetch(src, tmp_path)[0].read_bytes() == b"x"
    dead = RemoteSource(("http://127.0.0.1:9/",), (RemoteFile("a.bin", sha256(b"x")),))
    with pytest.raises(DownloadError, match=r"could not download 'a\.bin'") as info:
        fetch(dead, tmp_path / "d")
    assert isinstance(info.value, OSError) and not isinstance(info.value, core.ChecksumError)


def test_load_dataset_download(server, tmp_path, monkeypatch):
    served, base = server
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 5, dtype=np.uint8)
    files = {
        "t10k-images-idx3-ubyte.gz": idx_gz(images),
        "t10k-labels-idx1-ubyte.gz": idx_gz(labels),
    }
    for name, blob in files.items():
        (served / name).write_bytes(blob)
    remote = RemoteSource((base,), tuple(RemoteFile(n, sha256(b)) for n, b in files.items()))
    monkeypatch.setitem(
        IDX_SETS, "mnist", idx_mod.IdxSet(**{**IDX_SETS["mnist"].__dict__, "remote": remote})
    )
    root = tmp_path / "mnist-data"
    with pytest.raises(FileNotFoundError, match="download=True"):  # never downloads unless asked
        load_dataset("mnist", root=root, split="test")
    assert not root.exists()
    ds = load_dataset("mnist", root=root, split="test", download=True)
    np.testing.assert_array_equal(ds.images[:, 0].numpy(), images)
    np.testing.assert_array_equal(ds.targets.numpy(), labels)
    assert sorted(p.name for p in root.iterdir()) == sorted(files)
    (served / "t10k-images-idx3-ubyte.gz").unlink()  # cached now: no second download needed
    assert len(load_dataset("mnist", root=root, split="test", download=True)) == 5


def test_default_folder_is_under_the_cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv(core.HOME_ENV, str(tmp_path))
    assert default_data_dir() == tmp_path / "data"


def test_progress_bar_on_request(server, tmp_path, capsys):
    served, base = server
    (served / "p.bin").write_bytes(b"z" * 5000)
    fetch(RemoteSource((base,), (RemoteFile("p.bin", sha256(b"z" * 5000)),)), tmp_path, progress=True)
    assert "p.bin" in capsys.readouterr().err


def test_default_has_no_network(monkeypatch, tmp_path):
    def boom(*a, **k):
        raise AssertionError("network used without download=True")

    monkeypatch.setattr(core, "_transfer", boom)
    monkeypatch.setenv(core.HOME_ENV, str(tmp_path))
    with pytest.raises(FileNotFoundError):
        load_dataset("mnist")
    with pytest.raises(FileNotFoundError):
        load_dataset("cifar10")


def test_published_hashes_are_well_formed():
    for info in IDX_SETS.values():
        assert len(info.remote.files) == 4
        for f in info.remote.files:
            algo, _, digest = f.known_hash.partition(":")
            assert {"md5": 32, "sha256": 64}[algo] == len(digest) and int(digest, 16) >= 0
