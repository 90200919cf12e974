"""IDX reading (MNIST / Fashion-MNIST): synthetic files, the real Debian files when installed, bad input."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from antialias.data import CorruptDataError, DatasetNotFoundError, load_dataset, read_idx
from antialias.data.idx import IDX_SETS

DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def write_idx(path: Path, array: np.ndarray, *, code: int = 0x08, compress: bool = False) -> Path:
    """Independent IDX writer: header by struct, data big-endian."""
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    raw = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)
    return path


def make_idx_folder(
    folder: Path, split: str, n: int, *, compress: bool, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n, dtype=np.uint8)
    prefix = "train" if split == "train" else "t10k"
    ext = ".gz" if compress else ""
    folder.mkdir(parents=True, exist_ok=True)
    write_idx(folder / f"{prefix}-images-idx3-ubyte{ext}", images, compress=compress)
    write_idx(folder / f"{prefix}-labels-idx1-ubyte{ext}", labels, compress=compress)
    return images, labels


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    ("dtype", "code"),
    [
        (np.uint8, 0x08),
        (np.int8, 0x09),
        (np.int16, 0x0B),
        (np.int32, 0x0C),
        (np.float32, 0x0D),
        (np.float64, 0x0E),
    ],
)
def test_read_idx_roundtrip(tmp_path, compress, dtype, code):
    a = (np.arange(2 * 3 * 5) - 7).astype(dtype).reshape(2, 3, 5)
    if dtype == np.uint8:
        a = np.arange(30, dtype=np.uint8).reshape(2, 3, 5)
    out = read_idx(write_idx(tmp_path / "x", a, code=code, compress=compress))
    assert out.dtype == np.dtype(dtype) and out.shape == (2, 3, 5)
    np.testing.assert_array_equal(out, a)


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"", "magic"),
        (b"\x01\x00\x08\x01\x00\x00\x00\x02ab", "magic"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x02ab", "magic"),  # unknown type code
        (b"\x00\x00\x08\x03\x00\x00", "truncated"),  # header shorter than ndim announces
        (b"\x00\x00\x08\x01\x00\x00\x00\x05ab", "must hold 13 bytes"),  # data too short
        (b"\x00\x00\x08\x01\x00\x00\x00\x01abc", "must hold 9 bytes"),  # trailing bytes
        (b"\x1f\x8b\x08\x00garbage", "not a valid gzip"),
    ],
)
def test_read_idx_corrupt_names_file(tmp_path, payload, match):
    path = tmp_path / "broken-idx1-ubyte"
    path.write_bytes(payload)
    with pytest.raises(CorruptDataError, match=match) as info:
        read_idx(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("name", ["fashion-mnist", "mnist"])
def test_load_synthetic_folder(tmp_path, name, compress):
    images, labels = make_idx_folder(tmp_path / name, "test", 7, compress=compress)
    ds = load_dataset(f"{name}:{tmp_path}", split="test")  # found in the <root>/<name> subfolder
    assert (
        len(ds) == 7 and ds.num_classes == 10 and ds.in_channels == 1 and ds.image_size == (28, 28)
    )
    assert ds.classes == list(IDX_SETS[name].classes)
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (7, 1, 28, 28)
    assert ds.targets.dtype == torch.int64
    np.testing.assert_array_equal(ds.images[:, 0].numpy(), images)
    np.testing.assert_array_equal(ds.targets.numpy(), labels)
    img, label = ds[3]
    assert img.dtype == torch.float32 and img.shape == (1, 28, 28) and isinstance(label, int)
    torch.testing.assert_close(img[0], torch.from_numpy(images[3]).float() / 255, rtol=0, atol=0)
    assert label == int(labels[3])
    same = load_dataset(name, root=tmp_path / name, split="val")  # "val" aliases "test"
    assert torch.equal(same.images, ds.images)


def test_images_labels_disagree(tmp_path):
    make_idx_folder(tmp_path, "train", 4, compress=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3, np.uint8))
    with pytest.raises(CorruptDataError, match="one label per image") as info:
        load_dataset("mnist", root=tmp_path)
    assert "train-labels-idx1-ubyte" in str(info.value)


def test_missing_files_say_what_and_how(tmp_path):
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("fashion-mnist", root=tmp_path / "nowhere")
    msg = str(info.value)
    for needle in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", str(tmp_path / "nowhere"),
                   "apt-get install -y dataset-fashion-mnist", "download=True"):  # fmt: skip
        assert needle in msg, needle
    with pytest.raises(FileNotFoundError, match="download=True"):  # a FileNotFoundError too
        load_dataset("mnist", root=tmp_path, split="test")


def test_unknown_name_suggests():
    with pytest.raises(ValueError, match="Did you mean 'cifar10'"):
        load_dataset("cifar1O")
    with pytest.raises(ValueError, match="`split` must be"):
        load_dataset("mnist", split="dev")


@pytest.mark.skipif(
    not DEBIAN.is_dir(), reason="Debian package dataset-fashion-mnist not installed"
)
def test_real_fashion_mnist_test_split():
    ds = load_dataset("fashion-mnist", split="test")  # default search finds the Debian location
    # Independent parse of the same files: gzip + struct, no antialias code.
    with gzip.open(DEBIAN / "t10k-images-idx3-ubyte.gz") as fh:
        raw = fh.read()
    magic, n, h, w = struct.unpack(">IIII", raw[:16])
    assert (magic, n, h, w) == (0x803, 10000, 28, 28)
    with gzip.open(DEBIAN / "t10k-labels-idx1-ubyte.gz") as fh:
        lab = np.frombuffer(fh.read()[8:], np.uint8)
    assert len(ds) == 10000 and ds.images.shape == (10000, 1, 28, 28)
    assert torch.equal(
        ds.images.flatten(), torch.frombuffer(bytearray(raw[16:]), dtype=torch.uint8)
    )
    np.testing.assert_array_equal(ds.targets.numpy(), lab)
    assert ds.targets.bincount().tolist() == [1000] * 10  # Fashion-MNIST's test set is balanced
    assert ds.classes[0] == "T-shirt/top" and ds.classes[9] == "Ankle boot"
