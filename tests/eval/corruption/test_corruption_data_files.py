"""Released CIFAR-10-C / ImageNet-C files named by the user: recognised, checked, evaluated, and reachable from the CLI.

``inspect_corruption_data`` (the folder's layout and one clear error per problem),
``evaluate_corruption_files`` (the same results as the per-format functions) and
``antialias eval corruption --corruption-data DIR`` end to end on tiny files in the releases' layout.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from corruption_helpers import tiny_model, write_cifar10c, write_imagenet_c
from PIL import Image
from torch.utils.data import TensorDataset

from antialias.cli import main
from antialias.data.folder import ImageFolder
from antialias.eval.config import CorruptionConfig
from antialias.eval.corruption import (
    CorruptionFiles,
    evaluate_cifar10c,
    evaluate_corruption_files,
    evaluate_imagenet_c,
    inspect_corruption_data,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*randomly initialised")

# ----------------------------------------------------------------------------- recognising the layout


def test_cifar10c_folder_is_recognised(tmp_path):
    write_cifar10c(tmp_path, ["fog", "gaussian_noise"], n=4)
    files = inspect_corruption_data(tmp_path)
    assert files == CorruptionFiles(tmp_path, "cifar10-c", ("gaussian_noise", "fog"), (3, 32, 32))
    assert files.label == "CIFAR-10-C" and files.default_normaliser is None
    assert inspect_corruption_data(tmp_path, "cifar10-c", ["fog"]).names == ("fog",)


def test_imagenet_c_folder_is_recognised(tmp_path):
    write_imagenet_c(tmp_path, ["snow"])
    files = inspect_corruption_data(str(tmp_path))
    assert (files.format, files.names, files.image_shape) == ("imagenet-c", ("snow",), (3, 8, 8))
    assert files.label == "ImageNet-C" and files.default_normaliser == "alexnet"


def _bad_layouts(tmp_path: Path) -> dict[str, tuple[Path, str, str]]:
    """name -> (folder, format, message): one folder per problem."""
    cases: dict[str, tuple[Path, str, str]] = {}

    def folder(name: str) -> Path:
        p = tmp_path / name
        p.mkdir()
        return p

    cases["missing"] = (tmp_path / "nowhere", "auto", r"an existing folder of CIFAR-10-C .* It does not exist")
    write_cifar10c(folder("file"), ["fog"], n=2)
    cases["file"] = (tmp_path / "file" / "fog.npy", "auto", r"It is a file: give its folder, '.*file'")
    (folder("other") / "notes.txt").write_text("x")
    cases["other"] = (tmp_path / "other", "auto", r"a folder of CIFAR-10-C files .* It holds \['notes.txt'\]")
    (folder("parent") / "CIFAR-10-C").mkdir()
    write_cifar10c(tmp_path / "parent" / "CIFAR-10-C", ["fog"], n=2)
    cases["parent"] = (tmp_path / "parent", "auto", r"Did you mean '.*CIFAR-10-C'\?")
    write_imagenet_c(folder("inc"), ["fog"], per_class=1)
    cases["one corruption"] = (tmp_path / "inc" / "fog", "auto", r"one corruption's folder: give its parent")
    cases["severity"] = (tmp_path / "inc" / "fog" / "2", "auto", r"It holds \['n01', 'n02'\]")
    np.save(folder("c10p") / "translate.npy", np.zeros((2, 3, 32, 32, 3), np.uint8))
    cases["perturbation files"] = (tmp_path / "c10p", "auto", r"looks like CIFAR-10-P or ImageNet-P")
    write_cifar10c(folder("both"), ["fog"], n=2)
    write_imagenet_c(tmp_path / "both", ["snow"], per_class=1)
    cases["both"] = (tmp_path / "both", "auto", r"holds both .* --corruption-format cifar10-c or imagenet-c")
    write_cifar10c(folder("asked"), ["fog"], n=2)
    cases["wrong format"] = (tmp_path / "asked", "imagenet-c", r"a folder of ImageNet-C folders .*imagenet-c")
    return cases


def test_each_bad_folder_gets_its_own_message(tmp_path):
    for name, (path, data_format, message) in _bad_layouts(tmp_path).items():
        with pytest.raises(ValueError, match=r"^`corruption`: `corruption_data` must be .*" + message) as info:
            inspect_corruption_data(path, data_format, where="corruption")
        assert str(path) in str(info.value), name


def test_missing_labels_and_bad_arrays(tmp_path):
    write_cifar10c(tmp_path, ["fog", "snow"], n=2)
    (tmp_path / "labels.npy").unlink()
    with pytest.raises(ValueError, match=r"`corruption_data` must be a CIFAR-10-C folder with labels.npy .* It has no "
                       r"labels.npy: copy the CIFAR-10-C release's labels.npy"):
        inspect_corruption_data(tmp_path)
    np.save(tmp_path / "labels.npy", np.zeros((10, 2), np.int64))
    with pytest.raises(ValueError, match=r"`labels.npy` must be a 1-D integer array of 5 \* n labels .*\(10, 2\)"):
        inspect_corruption_data(tmp_path)
    np.save(tmp_path / "labels.npy", np.zeros(10, np.int64))
    np.save(tmp_path / "fog.npy", np.zeros((10, 32, 32), np.uint8))  # no channel axis
    with pytest.raises(ValueError, match=r"fog\.npy must be \(5 \* n, H, W, 3\) uint8 .* got \(10, 32, 32\) uint8"):
        inspect_corruption_data(tmp_path)
    np.save(tmp_path / "fog.npy", np.zeros((10, 16, 16, 3), np.uint8))  # snow.npy is 32x32
    with pytest.raises(ValueError, match=r"must be a folder whose .npy files hold images of one size"):
        inspect_corruption_data(tmp_path)
    np.save(tmp_path / "fog.npy", np.zeros((10, 32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match=r"has no frost.npy; available: \['fog', 'labels', 'snow'\]"):
        inspect_corruption_data(tmp_path, corruptions=["frost"])


def test_imagenet_c_missing_folders(tmp_path):
    write_imagenet_c(tmp_path, ["fog"], per_class=1)
    with pytest.raises(ValueError, match=r"with a snow/ folder, .* It holds \['fog'\]: extract snow there"):
        inspect_corruption_data(tmp_path, corruptions=["fog", "snow"])
    for f in (tmp_path / "fog" / "3").rglob("*"):
        if f.is_file():
            f.unlink()
    for d in sorted((tmp_path / "fog" / "3").rglob("*"), reverse=True):
        d.rmdir()
    (tmp_path / "fog" / "3").rmdir()
    with pytest.raises(ValueError, match=r"fog/ has no folder 3: .* --severities without \[3\]"):
        inspect_corruption_data(tmp_path)
    assert inspect_corruption_data(tmp_path, severities=[1, 2]).names == ("fog",)


def test_data_of_another_shape_is_refused():
    files = CorruptionFiles(Path("/x"), "cifar10-c", ("fog",), (3, 32, 32))
    with pytest.raises(ValueError, match=r"^`corruption`: `data` must be the clean set of the CIFAR-10-C files, with "
                       r"3x32x32 images like them, got 'fashion-mnist with 1x28x28 images'. Give --data cifar10"):
        files.check_data([1, 28, 28], "fashion-mnist", "corruption")
    files.check_data([3, 32, 32], "cifar10", "corruption")  # the same shape passes


def test_config_fields():
    assert CorruptionConfig(corruption_data=Path("/d")).corruption_data == "/d"  # recorded as a string
    with pytest.raises(ValueError, match=r"`corruption_format` must be 'auto' without `corruption_data`, got "
                       r"'cifar10-c'. Give the folder of the files too \(--corruption-data DIR\)"):
        CorruptionConfig(corruption_format="cifar10-c")
    with pytest.raises(ValueError, match=r"`corruption_format` must be one of .* Did you mean 'imagenet-c'"):
        CorruptionConfig(corruption_data="/d", corruption_format="imagenet_c")
    with pytest.raises(TypeError, match=r"`corruption_data` must be a folder of released files or None, got 3"):
        CorruptionConfig(corruption_data=3)


# ----------------------------------------------------------------------------- evaluating


def test_files_evaluate_as_the_per_format_functions(tmp_path):
    (tmp_path / "c").mkdir()
    write_cifar10c(tmp_path / "c", ["fog", "contrast"], n=5)
    model = tiny_model()
    got = evaluate_corruption_files(model, tmp_path / "c", batch_size=2, limit=4)
    want = evaluate_cifar10c(model, tmp_path / "c", batch_size=2, limit=4)
    assert got.to_dict() == want.to_dict() and got.images == 4 and got.normaliser is None
    (tmp_path / "i").mkdir()
    write_imagenet_c(tmp_path / "i", ["fog"])
    got = evaluate_corruption_files(model, tmp_path / "i", severities=[1, 3], batch_size=3)
    want = evaluate_imagenet_c(model, tmp_path / "i", severities=[1, 3], batch_size=3, normaliser="alexnet")
    assert got.to_dict() == want.to_dict() and got.normaliser is not None  # ImageNet-C: AlexNet by default
    assert evaluate_corruption_files(model, tmp_path / "i", severities=[1], normaliser=None).normaliser is None


def test_clean_images_must_be_the_files_clean_set(tmp_path):
    _, labels = write_cifar10c(tmp_path, ["fog"], n=4)
    images = torch.rand(4, 3, 32, 32)
    right = TensorDataset(images, torch.from_numpy(labels))
    result = evaluate_corruption_files(tiny_model(), tmp_path, clean=right, batch_size=3)
    assert result.clean_error is not None and result.clean_error.total == 4
    wrong = TensorDataset(images, torch.from_numpy((labels + 1) % 4))
    with pytest.raises(ValueError, match=r"`clean_batches` must be the clean images of the files, .* got other labels "
                       r"at image 0. Give the CIFAR-10 test set \(--data cifar10\), or leave the clean error out"):
        evaluate_corruption_files(tiny_model(), tmp_path, clean=wrong, batch_size=3)
    short = TensorDataset(images[:3], torch.from_numpy(labels[:3]))
    with pytest.raises(ValueError, match=r"got fewer images at image 3"):
        evaluate_corruption_files(tiny_model(), tmp_path, clean=short, batch_size=3)


def test_imagenet_c_clean_images_come_from_an_image_folder(tmp_path):
    write_imagenet_c(tmp_path / "c", ["fog"])
    clean = tmp_path / "val"
    for f in (tmp_path / "c" / "fog" / "1").rglob("*.png"):  # the same class folders and file names
        (clean / f.parent.name).mkdir(parents=True, exist_ok=True)
        Image.open(f).save(clean / f.parent.name / f.name)
    result = evaluate_corruption_files(tiny_model(), tmp_path / "c", clean=ImageFolder(clean), severities=[1])
    assert result.clean_error is not None and result.clean_error.total == 4
    with pytest.raises(ValueError, match=r"`clean` must be the ImageNet validation image folder .* got TensorDataset. "
                       r"Give --data imagenet:PATH, or --no-clean"):
        evaluate_corruption_files(tiny_model(), tmp_path / "c", clean=TensorDataset(torch.rand(4, 3, 8, 8)))


# ----------------------------------------------------------------------------- the command line

NETS = textwrap.dedent(
    """
    import numpy as np
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset

    class Brightness(nn.Module):
        # class k of 4 when the image's mean is nearest (2k + 1) / 8: predictions a test can compute
        def __init__(self, in_channels=3, num_classes=4):
            super().__init__()
            self.register_buffer("centres", (2 * torch.arange(num_classes) + 1) / (2 * num_classes))
            self.scale = nn.Parameter(torch.zeros(()))  # exp(scale) > 0 whatever its value: the classes stay put

        def forward(self, x):
            return -self.scale.exp() * (x.mean((1, 2, 3))[:, None] - self.centres) ** 2

    def brightness(in_channels=3, num_classes=4):
        return Brightness(in_channels, 4)  # 4 whatever num_classes says (--subset hides a factory set's classes)

    class Images(TensorDataset):
        classes = ["0", "1", "2", "3"]

    def clean(split="test", root=None):
        folder = __file__.rsplit("/", 1)[0]
        x = torch.from_numpy(np.load(folder + "/clean.npy")).permute(0, 3, 1, 2).float() / 255
        return Images(x, torch.from_numpy(np.load(folder + "/labels.npy")[: len(x)]))

    def gray(split="test", root=None):
        return Images(torch.rand(4, 1, 28, 28), torch.zeros(4, dtype=torch.long))
    """
)
LEVELS = np.array([20, 90, 160, 230])  # mean pixel values far from the classifier's boundaries (64, 128, 191)


def brightness_images(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """uint8 images (..., 32, 32, 3) of one of LEVELS each, plus noise that moves no mean across a boundary."""
    levels = rng.choice(LEVELS, shape[:-3])[..., None, None, None]
    return np.clip(levels + rng.integers(-10, 11, shape), 0, 255).astype(np.uint8)


def predicted(images: np.ndarray) -> np.ndarray:
    """The Brightness model's classes of uint8 images (..., H, W, 3)."""
    means = images.reshape(*images.shape[:-3], -1).mean(-1) / 255
    return np.abs(means[..., None] - (2 * np.arange(4) + 1) / 8).argmin(-1)


@pytest.fixture
def cifar10c(tmp_path):
    rng = np.random.default_rng(0)
    n = 6
    files = tmp_path / "CIFAR-10-C"
    files.mkdir()
    labels = rng.integers(0, 4, n)
    np.save(files / "labels.npy", np.tile(labels, 5))
    arrays = {c: brightness_images(rng, (5 * n, 32, 32, 3)) for c in ("contrast", "fog")}
    for c, a in arrays.items():
        np.save(files / f"{c}.npy", a)
    (tmp_path / "nets.py").write_text(NETS)
    np.save(tmp_path / "clean.npy", brightness_images(rng, (n, 32, 32, 3)))
    np.save(tmp_path / "labels.npy", labels)
    return tmp_path, arrays, labels


def test_cli_evaluates_cifar10c_files_end_to_end(cifar10c, capsys):
    root, arrays, labels = cifar10c
    out = root / "c.json"
    argv = ["eval", "corruption", "--model", f"{root / 'nets.py'}:brightness", "--data", f"{root / 'nets.py'}:clean",
            "--normalize", "none", "--corruption-data", str(root / "CIFAR-10-C"), "--subset", "4", "--batch-size",
            "3", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("corruption: fog error") and f"wrote {root / 'c.png'}" in printed
    record = json.loads(out.read_text())
    assert record["config"]["corruption_data"] == str(root / "CIFAR-10-C")
    assert record["config"]["corruption_format"] == "cifar10-c" and record["config"]["normaliser"] is None
    res = record["results"]
    assert res["corruptions"] == ["fog", "contrast"] and res["images"] == 4  # canonical order; --subset 4
    assert res["config"]["source"].startswith("CIFAR-10-C files at")
    for c, a in arrays.items():  # severity s is rows (s - 1) * 6 .. (s - 1) * 6 + 3 (the first 4 of each block)
        want = [float(np.mean(predicted(a[(s - 1) * 6 : (s - 1) * 6 + 4]) != labels[:4])) for s in range(1, 6)]
        assert [res["errors"][c][str(s)]["value"] for s in range(1, 6)] == pytest.approx(want)
    clean = np.load(root / "clean.npy")[:4]
    assert res["clean_error"]["value"] == pytest.approx(float(np.mean(predicted(clean) != labels[:4])))


def test_cli_refuses_bad_corruption_data(cifar10c, capsys):
    root, _, _ = cifar10c
    base = ["eval", "corruption", "--model", f"{root / 'nets.py'}:brightness", "--normalize", "none", "--out",
            str(root / "x.json")]
    assert main([*base, "--corruption-data", str(root / "missing")]) == 1
    assert "`corruption`: `corruption_data` must be an existing folder" in capsys.readouterr().err
    assert main([*base, "--data", f"{root / 'nets.py'}:gray", "--corruption-data", str(root / "CIFAR-10-C")]) == 1
    err = capsys.readouterr().err
    assert "`data` must be the clean set of the CIFAR-10-C files, with 3x32x32 images like them" in err
    assert "Give --data cifar10" in err and not (root / "x.json").exists()
    with pytest.raises(SystemExit) as info:  # a layout without a folder is a usage error
        main([*base, "--corruption-format", "imagenet-c"])
    assert info.value.code == 2 and "`corruption_format` must be 'auto' without" in capsys.readouterr().err


def test_cli_evaluates_imagenet_c_folders_with_their_clean_images(tmp_path, capsys):
    write_imagenet_c(tmp_path / "ImageNet-C", ["fog"])
    for f in (tmp_path / "ImageNet-C" / "fog" / "1").rglob("*.png"):  # the validation folder: the same file names
        (tmp_path / "val" / f.parent.name).mkdir(parents=True, exist_ok=True)
        Image.open(f).save(tmp_path / "val" / f.parent.name / f.name)
    (tmp_path / "nets.py").write_text(NETS)
    out = tmp_path / "i.json"
    argv = ["eval", "corruption", "--model", f"{tmp_path / 'nets.py'}:brightness", "--data",
            f"imagefolder:{tmp_path / 'val'}", "--corruption-data", str(tmp_path / "ImageNet-C"), "--severities", "1",
            "2", "--out", str(out)]
    assert main(argv) == 0
    record = json.loads(out.read_text())
    assert record["config"]["corruption_format"] == "imagenet-c" and record["config"]["normaliser"] == "alexnet"
    res = record["results"]
    assert res["images"] == 4 and res["clean_error"]["total"] == 4 and res["normaliser"]["source"]
    assert set(res["ce"]) == {"fog"}  # CE against AlexNet's published fog errors at severities 1, 2
    (tmp_path / "val" / "n02" / "img1.png").unlink()  # the clean folder no longer matches the files
    assert main([*argv, "--force"]) == 1
    assert "`clean_root` must hold the same class folders and file names" in capsys.readouterr().err
    assert main([*argv, "--force", "--no-clean"]) == 0
