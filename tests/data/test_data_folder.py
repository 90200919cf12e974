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


# ------------------------------------------------------------------ which class index each folder is


def _folders(root: Path, names) -> None:
    for name in names:
        (root / name).mkdir(parents=True)
        Image.new("RGB", (4, 4)).save(root / name / "a.png")


def test_imagefolder_default_keeps_sorted_labels_for_integer_names(tmp_path):
    _folders(tmp_path, ["243", "7", "10"])
    ds = ImageFolder(tmp_path)  # no class_map: unchanged rule (string order)
    assert ds.class_to_idx == {"10": 0, "243": 1, "7": 2} and ds.label_source == "sorted folder names"


def test_imagefolder_auto_integer_folder_names_are_indices(tmp_path):
    _folders(tmp_path, ["243", "7", "10"])
    ds = ImageFolder(tmp_path, class_map="auto")
    assert ds.label_source == "integer folder names"
    assert sorted(ds.targets.tolist()) == [7, 10, 243] and ds.num_classes == 244
    assert {ds.classes[i]: int(ds[i][1]) for i in range(3)} == {"10": 10, "243": 243, "7": 7}


def test_imagefolder_auto_imagenet_wnids_index_by_the_full_list(tmp_path):
    from antialias.data._imagenet_classes import IMAGENET_WNIDS

    # a subset of the 1000 classes: positions in the full sorted list, not in the subset
    _folders(tmp_path, [IMAGENET_WNIDS[207], IMAGENET_WNIDS[3], IMAGENET_WNIDS[999]])
    ds = ImageFolder(tmp_path, class_map="auto")
    assert ds.label_source == "imagenet wnids" and ds.num_classes == 1000
    assert sorted(ds.targets.tolist()) == [3, 207, 999]
    assert len(IMAGENET_WNIDS) == 1000 and list(IMAGENET_WNIDS) == sorted(IMAGENET_WNIDS)
    assert IMAGENET_WNIDS[0] == "n01440764" and IMAGENET_WNIDS[-1] == "n15075141"


@pytest.mark.parametrize("kind", ["json-object", "json-list", "text-pairs", "text-lines", "mapping"])
def test_imagefolder_class_map_formats(tmp_path, kind):
    root = tmp_path / "data"
    _folders(root, ["dog", "cat"])
    if kind == "json-object":
        cmap = tmp_path / "m.json"
        cmap.write_text('{"cat": 281, "dog": 207}')
    elif kind == "json-list":
        cmap = tmp_path / "m.json"
        cmap.write_text('["x", "dog", "cat"]')
    elif kind == "text-pairs":
        cmap = tmp_path / "m.txt"
        cmap.write_text("cat 281\n\ndog 207\n")
    elif kind == "text-lines":  # LOC_synset_mapping.txt style: index = line number
        cmap = tmp_path / "m.txt"
        cmap.write_text("x unused class\ndog a good boy\ncat felis catus\n")
    else:
        cmap = {"cat": 281, "dog": 207}
    ds = ImageFolder(root, class_map=cmap)
    want = {"json-list": {"dog": 1, "cat": 2}, "text-lines": {"dog": 1, "cat": 2}}.get(kind, {"cat": 281, "dog": 207})
    assert ds.class_to_idx == want and ds.label_source == "class map"
    assert ds.num_classes == max(want.values()) + 1
    assert {ds.classes[i]: ds[i][1] for i in range(2)} == want


def test_imagefolder_class_map_errors(tmp_path):
    root = tmp_path / "data"
    _folders(root, ["dog", "cat"])
    with pytest.raises(ValueError, match=r"no entry for 'dog'.*Did you mean 'dogs'\?"):
        ImageFolder(root, class_map={"cat": 1, "dogs": 2})
    with pytest.raises(ValueError, match=r"integers >= 0, got 'cat': -1"):
        ImageFolder(root, class_map={"cat": -1, "dog": 2})
    with pytest.raises(ValueError, match=r"existing \.json or text file"):
        ImageFolder(root, class_map=tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"cat": "one"}')
    with pytest.raises(ValueError, match="JSON object"):
        ImageFolder(root, class_map=bad)
    dup = tmp_path / "dup.txt"
    dup.write_text("cat 1\ncat 2\ndog 3\n")
    with pytest.raises(ValueError, match="each folder once"):
        ImageFolder(root, class_map=dup)
