"""CIFAR pickles: fake batches in the exact Python 2 format, archives, and pickles that must be refused."""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import torch

from antialias.data import (
    CorruptDataError,
    DatasetNotFoundError,
    UnsafePickleError,
    load_dataset,
    safe_unpickle,
)


class Py2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote for the CIFAR files: bytes as BINSTRING opcodes and
    numpy's reconstructor under its numpy 1 module path, so the fakes match the real files' opcodes."""

    dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None):
        if getattr(obj, "__name__", "") == "_reconstruct":
            self.write(pickle.GLOBAL + b"numpy.core.multiarray\n_reconstruct\n")
            self.memoize(obj)
            return
        super().save_global(obj, name)


def py2_dumps(obj) -> bytes:
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def fake_batch(
    n: int, n_classes: int, seed: int, label_key: bytes
) -> tuple[bytes, np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = rng.integers(0, n_classes, size=n).tolist()
    extra = {b"coarse_labels": [0] * n} if label_key == b"fine_labels" else {}
    d = {b"batch_label": b"fake batch", label_key: labels, b"data": data,
         b"filenames": [b"img_%d.png" % i for i in range(n)], **extra}  # fmt: skip
    return py2_dumps(d), data, labels


def make_cifar10(root: Path, n: int = 3) -> dict[str, tuple[np.ndarray, list[int]]]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [
        b"airplane",
        b"automobile",
        b"bird",
        b"cat",
        b"deer",
        b"dog",
        b"frog",
        b"horse",
        b"ship",
        b"truck",
    ]
    (folder / "batches.meta").write_bytes(
        py2_dumps({b"label_names": names, b"num_cases_per_batch": n, b"num_vis": 3072})
    )
    out = {}
    for i, member in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        blob, data, labels = fake_batch(n, 10, i, b"labels")
        (folder / member).write_bytes(blob)
        out[member] = (data, labels)
    return out


def make_cifar100(root: Path, n: int = 4) -> dict[str, tuple[np.ndarray, list[int]]]:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    fine = [b"class_%02d" % i for i in range(100)]
    (folder / "meta").write_bytes(
        py2_dumps({b"fine_label_names": fine, b"coarse_label_names": [b"c"] * 20})
    )
    out = {}
    for i, member in enumerate(["train", "test"]):
        blob, data, labels = fake_batch(n, 100, 10 + i, b"fine_labels")
        (folder / member).write_bytes(blob)
        out[member] = (data, labels)
    return out


def tar_folder(root: Path, folder: str, archive: str) -> Path:
    path = root / archive
    with tarfile.open(path, "w:gz") as tar:
        tar.add(root / folder, arcname=folder)
    return path


def test_fake_batches_use_py2_opcodes():
    blob, _, _ = fake_batch(2, 10, 0, b"labels")
    assert (
        b"numpy.core.multiarray\n_reconstruct" in blob
        and pickle.SHORT_BINSTRING + b"\x04data" in blob
    )


def expected(parts, members):
    data = np.concatenate([parts[m][0] for m in members]).reshape(-1, 3, 32, 32)
    labels = [label for m in members for label in parts[m][1]]
    return torch.from_numpy(data), torch.tensor(labels)


@pytest.mark.parametrize("as_archive", [False, True])
def test_cifar10(tmp_path, as_archive):
    parts = make_cifar10(tmp_path)
    root = tmp_path
    if as_archive:
        tar_folder(tmp_path, "cifar-10-batches-py", "cifar-10-python.tar.gz")
        import shutil

        shutil.rmtree(tmp_path / "cifar-10-batches-py")
    train = load_dataset(f"cifar10:{root}")
    x, y = expected(parts, [f"data_batch_{k}" for k in range(1, 6)])
    assert len(train) == 15 and torch.equal(train.images, x) and torch.equal(train.targets, y)
    assert train.classes[1] == "automobile" and train.num_classes == 10
    assert train.in_channels == 3 and train.image_size == (32, 32)
    # Channel planes: the first 1024 values of a row are red, row-major.
    img, label = train[4]
    r = torch.from_numpy(parts["data_batch_2"][0][1, :1024].reshape(32, 32)).float() / 255
    torch.testing.assert_close(img[0], r, rtol=0, atol=0)
    assert label == parts["data_batch_2"][1][1]
    test = load_dataset("cifar10", root=root, split="test")
    x, y = expected(parts, ["test_batch"])
    assert torch.equal(test.images, x) and torch.equal(test.targets, y)


@pytest.mark.parametrize("as_archive", [False, True])
def test_cifar100_fine_labels(tmp_path, as_archive):
    parts = make_cifar100(tmp_path)
    root = tmp_path
    if as_archive:
        root = tar_folder(
            tmp_path, "cifar-100-python", "cifar-100-python.tar.gz"
        )  # the archive itself
    for split in ("train", "test"):
        ds = load_dataset("cifar100", root=root, split=split)
        x, y = expected(parts, [split])
        assert torch.equal(ds.images, x) and torch.equal(ds.targets, y)
        assert ds.num_classes == 100 and ds.classes[7] == "class_07"


class Payload:
    """Unpickling this runs ``exec`` (writes a marker file): a pickle that would run code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def test_payload_is_live(tmp_path):
    # Proves the malicious fixture really executes under plain pickle, so the refusal tests can fail.
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(Payload(marker), protocol=2))
    assert marker.exists()


@pytest.mark.parametrize("as_archive", [False, True])
@pytest.mark.parametrize("member", ["batches.meta", "data_batch_3", "test_batch"])
def test_malicious_pickle_refused_nothing_run(tmp_path, member, as_archive):
    make_cifar10(tmp_path)
    marker = tmp_path / "ran"
    evil = {b"data": Payload(marker), b"labels": [0], b"label_names": [Payload(marker)]}
    (tmp_path / "cifar-10-batches-py" / member).write_bytes(pickle.dumps(evil, protocol=2))
    root = tar_folder(tmp_path, "cifar-10-batches-py", "c.tar.gz") if as_archive else tmp_path
    split = "test" if member == "test_batch" else "train"
    with pytest.raises(UnsafePickleError, match=r"global (__builtin__|builtins)\.exec") as info:
        load_dataset("cifar10", root=root, split=split)
    assert member in str(info.value) and "nothing was executed" in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize(
    "obj",
    [
        __import__("os").system,
        np.array([1, None], dtype=object),  # object arrays would unpickle arbitrary items
        np.zeros(2, dtype=[("a", "u1"), ("b", "f4")]),  # structured dtypes: refused, not needed
    ],
)
def test_other_globals_and_dtypes_refused(obj):
    with pytest.raises(UnsafePickleError):
        safe_unpickle(pickle.dumps(obj, protocol=2), source="x")


def test_plain_data_and_py3_pickles_accepted():
    a = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for protocol in (2, 3, 4):  # protocol 2 from Python 3 writes bytes via _codecs.encode
        out = safe_unpickle(pickle.dumps({b"data": a, "x": [1, "s", b"b"]}, protocol=protocol))
        np.testing.assert_array_equal(out[b"data"], a)
        assert out["x"] == [1, "s", b"b"]


def test_corrupt_pickle_names_file(tmp_path):
    make_cifar10(tmp_path)
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(CorruptDataError, match="data_batch_2"):
        load_dataset("cifar10", root=tmp_path)


def test_wrong_shape_names_file(tmp_path):
    make_cifar10(tmp_path)
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(
        py2_dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    )
    with pytest.raises(CorruptDataError, match=r"test_batch must hold 'data' as uint8 \(N, 3072\)"):
        load_dataset("cifar10", root=tmp_path, split="test")


def test_missing_cifar_lists_files(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("cifar100", root=tmp_path)
    msg = str(info.value)
    for needle in ("cifar-100-python", "meta", "train", "cifar-100-python.tar.gz", "download=True"):
        assert needle in msg, needle
