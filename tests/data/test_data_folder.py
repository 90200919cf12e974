"""ImageFolder / ImageNet layout on a temporary folder of PNG and JPEG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from antialias.data import CorruptDataError, DatasetNotFoundError, ImageFolder, load_dataset


def make_tree(root: Path, sizes=((20, 30), (40, 25))) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    out: dict[str, list[np.ndarray]] = {}
    for cls in ("n02", "n01", "n10"):  # deliberately unsorted creation order
        (root / cls).mkdir(parents=True)
        out[cls] = []
        for i, (h, w) in enumerate(sizes):
            arr = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            Image.fromarray(arr).save(root / cls / f"img{i}.png")
            out[cls].append(arr)
        Image.fromarray(arr).save(root / cls / "z.JPEG", quality=95)  # upper-case extension
    (root / "n01" / "notes.txt").write_text("not an image")
    return out


def test_imagefolder_classes_labels_pixels(tmp_path):
    arrays = make_tree(tmp_path)
    ds = ImageFolder(tmp_path)
    assert ds.classes == ["n01", "n02", "n10"] and ds.num_classes == 3 and len(ds) == 9
    assert ds.targets.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert ds.image_size is None and ds.in_channels == 3
    img, label = ds[4]  # n02/img1.png
    assert label == 1 and img.dtype == torch.float32 and img.shape == (3, 40, 25)
    ref = torch.from_numpy(arrays["n02"][1]).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(img, ref, rtol=0, atol=0)  # PNG is lossless
    jpeg, _ = ds[2]  # n01/z.JPEG: lossy, so compare with Pillow's own decode of the file
    with Image.open(tmp_path / "n01" / "z.JPEG") as im:
        decoded = (
            torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1).float() / 255
        )
    torch.testing.assert_close(jpeg, decoded, rtol=0, atol=0)


def test_imagefolder_transform_and_grey_png(tmp_path):
    (tmp_path / "a").mkdir()
    Image.fromarray(np.full((8, 6), 200, np.uint8), mode="L").save(tmp_path / "a" / "g.png")
    ds = ImageFolder(tmp_path, transform=lambda x: x[:, :4, :4])
    img, _ = ds[0]
    assert img.shape == (3, 4, 4) and torch.allclose(img, torch.full_like(img, 200 / 255))


def test_imagenet_layout(tmp_path):
    make_tree(tmp_path / "train")
    make_tree(tmp_path / "val", sizes=((300, 260),))
    train = load_dataset(f"imagenet:{tmp_path}")
    val = load_dataset(f"imagenet:{tmp_path}", split="val")
    test = load_dataset("imagenet", root=tmp_path, split="test")
    assert len(train) == 9 and len(val) == len(test) == 6 and val.classes == train.classes
    assert train.image_size == (224, 224)
    assert train[0][0].shape == (3, 224, 224) and val[0][0].shape == (3, 224, 224)
    plain = load_dataset(f"imagefolder:{tmp_path}", split="test")  # no default resize
    assert plain.image_size is None and plain[0][0].shape == (3, 300, 260)


def test_flat_imagefolder_is_train_only(tmp_path):
    make_tree(tmp_path)
    assert len(load_dataset(f"imagefolder:{tmp_path}")) == 9
    with pytest.raises(DatasetNotFoundError, match=r"val or .*test"):
        load_dataset(f"imagefolder:{tmp_path}", split="test")


def test_corrupt_jpeg_names_file(tmp_path):
    make_tree(tmp_path)
    bad = tmp_path / "n10" / "z.JPEG"
    bad.write_bytes(bad.read_bytes()[:40])
    ds = ImageFolder(tmp_path)
    with pytest.raises(CorruptDataError, match=r"z\.JPEG") as info:
        ds[8]
    assert str(bad) in str(info.value)


def test_missing_or_empty_folders(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        ImageFolder(tmp_path / "nope")
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(DatasetNotFoundError, match="no images"):
        ImageFolder(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="train/n01440764"):
        load_dataset(f"imagenet:{tmp_path / 'missing'}")
    with pytest.raises(ValueError, match="must include the folder"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="`download` must be False"):
        load_dataset(f"imagefolder:{tmp_path}", download=True)
