"""Released CIFAR-10-P files and ImageNet-P videos named by the user: recognised, checked, read, evaluated, and
reachable from the CLI (``antialias eval perturbation --perturbation-data DIR``).

ImageNet-P videos are written here in the release's format (H.264 .mp4, one per image, in
``<perturbation>/<wnid>/``) with PyAV, the optional ``video`` extra; those tests skip without it.
The missing-PyAV error is tested by hiding the module.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from antialias.cli import main
from antialias.eval.config import PerturbationConfig
from antialias.eval.perturbation import (
    PerturbationFiles,
    evaluate_cifar10p,
    evaluate_perturbation_files,
    inspect_perturbation_data,
    open_imagenet_p,
    read_imagenet_p,
)
from antialias.eval.perturbation.readers import read_video

pytestmark = pytest.mark.filterwarnings("ignore:.*randomly initialised")

LEVELS = np.array([20, 90, 160, 230])  # mean pixel values far from the classifier's boundaries (64, 128, 191)
NETS = textwrap.dedent(
    """
    import torch
    from torch import nn
    from torch.utils.data import TensorDataset

    class Brightness(nn.Module):
        # class k of 4 when the image's mean is nearest (2k + 1) / 8: predictions a test can compute
        def __init__(self):
            super().__init__()
            self.register_buffer("centres", (2 * torch.arange(4) + 1) / 8)
            self.scale = nn.Parameter(torch.zeros(()))  # exp(scale) > 0 whatever its value: the classes stay put

        def forward(self, x):
            return -self.scale.exp() * (x.mean((1, 2, 3))[:, None] - self.centres) ** 2

    def brightness(in_channels=3, num_classes=4):
        return Brightness()

    class Images(TensorDataset):
        classes = ["0", "1", "2", "3"]

    def images32(split="test", root=None):
        return Images(torch.rand(4, 3, 32, 32), torch.zeros(4, dtype=torch.long))

    def images16(split="test", root=None):
        return Images(torch.rand(4, 3, 16, 16), torch.zeros(4, dtype=torch.long))
    """
)


def sequences(rng: np.random.Generator, n: int, frames: int, size: int, noise: int = 10) -> np.ndarray:
    """uint8 sequences (n, frames, size, size, 3): each frame one of LEVELS plus noise that moves no mean far."""
    levels = rng.choice(LEVELS, (n, frames))[..., None, None, None]
    return np.clip(levels + rng.integers(-noise, noise + 1, (n, frames, size, size, 3)), 0, 255).astype(np.uint8)


def expected_flip_probability(seqs: np.ndarray, noise: bool) -> float:
    """The Brightness model's flip probability, from the frames: pairs (t, t + 1), or (0, t) for noise."""
    means = seqs.reshape(*seqs.shape[:2], -1).mean(-1) / 255
    pred = np.abs(means[..., None] - (2 * np.arange(4) + 1) / 8).argmin(-1)  # (n, T)
    flips = pred[:, 1:] != (pred[:, :1] if noise else pred[:, :-1])
    return float(flips.mean())


def write_cifar10p(root: Path, names: dict[str, np.ndarray]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, array in names.items():
        np.save(root / f"{name}.npy", array)


def write_video(path: Path, frames: np.ndarray) -> None:
    """One video in ImageNet-P's format: H.264 in .mp4, one frame a second, from (T, H, W, 3) uint8 frames."""
    av = pytest.importorskip("av")
    if "libx264" not in av.codecs_available:
        pytest.skip("this PyAV build has no H.264 encoder")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=1)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def write_imagenet_p(root: Path, names: dict[str, np.ndarray], classes=("n01440764", "n01443537")) -> list[str]:
    """``<name>/<wnid>/ILSVRC2012_val_<i>.mp4``; the videos of each name are split over the classes in order."""
    files = []
    for name, seqs in names.items():
        for i, seq in enumerate(seqs):
            rel = f"{classes[i * len(classes) // len(seqs)]}/ILSVRC2012_val_{i:08d}.mp4"
            write_video(root / name / rel, seq)
            files.append(rel)
    return files


# ----------------------------------------------------------------------------- CIFAR-10-P


def test_cifar10p_folder_is_recognised_and_evaluated(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"translate": sequences(rng, 5, 4, 32), "gaussian_noise": sequences(rng, 5, 4, 32)}
    write_cifar10p(tmp_path, arrays)
    files = inspect_perturbation_data(tmp_path)
    assert files == PerturbationFiles(tmp_path, "cifar10-p", ("gaussian_noise", "translate"), (3, 32, 32))
    assert files.label == "CIFAR-10-P" and files.videos is None
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    got = evaluate_perturbation_files(model, tmp_path, batch_size=2, limit=3)
    want = evaluate_cifar10p(model, tmp_path, batch_size=2, limit=3)
    assert got.to_dict()["flip_probability"] == want.to_dict()["flip_probability"]
    assert got.sequences == {"gaussian_noise": 3, "translate": 3}


def _bad_layouts(tmp_path: Path) -> dict[str, tuple[Path, str, type, str]]:
    """name -> (folder, format, error type, message): one folder per problem."""
    rng = np.random.default_rng(0)
    seq = sequences(rng, 2, 3, 32)
    cases: dict[str, tuple[Path, str, type, str]] = {}
    cases["missing"] = (tmp_path / "nowhere", "auto", ValueError,
                        r"`perturbation_data` must be an existing folder of CIFAR-10-P .* It does not exist")
    write_cifar10p(tmp_path / "file", {"rotate": seq})
    cases["file"] = (tmp_path / "file" / "rotate.npy", "auto", ValueError, r"It is a file: give its folder")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "a.txt").write_text("x")
    cases["other"] = (tmp_path / "other", "auto", ValueError, r"It holds \['a.txt'\]")
    write_cifar10p(tmp_path / "parent" / "CIFAR-10-P", {"rotate": seq})
    cases["parent"] = (tmp_path / "parent", "auto", ValueError, r"Did you mean '.*CIFAR-10-P'\?")
    write_cifar10p(tmp_path / "cifar10c", {"fog": np.zeros((10, 32, 32, 3), np.uint8)})
    np.save(tmp_path / "cifar10c" / "labels.npy", np.zeros(10, np.int64))
    cases["corruption files"] = (tmp_path / "cifar10c", "auto", ValueError,
                                 r"looks like CIFAR-10-C or ImageNet-C: use `antialias eval corruption")
    write_cifar10p(tmp_path / "cifar10c_snow", {"snow": np.zeros((10, 32, 32, 3), np.uint8)})
    cases["a corruption file"] = (tmp_path / "cifar10c_snow", "auto", ValueError,
                                  r"snow.npy must hold \(n, frames >= 2, H, W, 3\) .* looks like a CIFAR-10-C file")
    write_cifar10p(tmp_path / "short", {"rotate": np.zeros((2, 1, 32, 32, 3), np.uint8)})
    cases["one frame"] = (tmp_path / "short", "auto", ValueError, r"got \(2, 1, 32, 32, 3\) uint8")
    write_cifar10p(tmp_path / "sizes", {"rotate": seq, "tilt": sequences(rng, 2, 3, 16)})
    cases["two sizes"] = (tmp_path / "sizes", "auto", ValueError, r"whose .npy files hold frames of one size")
    write_cifar10p(tmp_path / "asked", {"rotate": seq})
    cases["wrong format"] = (tmp_path / "asked", "imagenet-p", ValueError,
                             r"must be a folder of ImageNet-P folders .*\(--perturbation-format imagenet-p\)")
    (tmp_path / "videos" / "rotate" / "n01").mkdir(parents=True)
    (tmp_path / "videos" / "rotate" / "n01" / "a.mp4").write_bytes(b"not decoded: the layout is refused first")
    cases["one perturbation"] = (tmp_path / "videos" / "rotate", "auto", ValueError,
                                 r"one perturbation's folder: give its parent, '.*videos'")
    cases["one class"] = (tmp_path / "videos" / "rotate" / "n01", "auto", ValueError,
                          r"the videos of one class: give the folder two levels up, '.*videos'")
    write_cifar10p(tmp_path / "videos", {"rotate": seq})
    cases["both"] = (tmp_path / "videos", "auto", ValueError, r"holds both .* --perturbation-format cifar10-p or")
    return cases


def test_each_bad_folder_gets_its_own_message(tmp_path):
    for name, (path, data_format, error, message) in _bad_layouts(tmp_path).items():
        with pytest.raises(error, match=message) as info:
            inspect_perturbation_data(path, data_format, where="perturbation")
        assert str(info.value).startswith("`perturbation`: "), name


def test_a_missing_perturbation_names_what_is_there(tmp_path):
    write_cifar10p(tmp_path, {"rotate": sequences(np.random.default_rng(0), 2, 3, 32)})
    with pytest.raises(ValueError, match=r"a CIFAR-10-P folder with tilt.npy, .* It holds \['rotate.npy'\]: copy "
                       r"tilt.npy there, or leave it out of --perturbations"):
        inspect_perturbation_data(tmp_path, perturbations=["rotate", "tilt"])
    with pytest.raises(ValueError, match=r"Did you mean 'rotate'"):
        inspect_perturbation_data(tmp_path, perturbations=["rotat"])


def test_data_of_another_shape_and_config_fields():
    files = PerturbationFiles(Path("/x"), "imagenet-p", ("translate",), (3, 224, 224))
    with pytest.raises(ValueError, match=r"`data` must be the clean set of the ImageNet-P files, with 3x224x224 "
                       r"images like them, got 'cifar10 with 3x32x32 images'. Give --data imagenet:PATH"):
        files.check_data([3, 32, 32], "cifar10", "perturbation")
    assert PerturbationConfig(perturbation_data=Path("/d")).perturbation_data == "/d"
    with pytest.raises(ValueError, match=r"`perturbation_format` must be 'auto' without `perturbation_data`"):
        PerturbationConfig(perturbation_format="imagenet-p")


# ----------------------------------------------------------------------------- ImageNet-P videos


def test_without_pyav_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    (tmp_path / "translate" / "n01440764").mkdir(parents=True)
    (tmp_path / "translate" / "n01440764" / "ILSVRC2012_val_00000293.mp4").write_bytes(b"\x00" * 8)
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` now raises ImportError
    hint = r"needs PyAV, which is not installed. pip install \"antialias\[video\]\"  \(or: pip install av\)"
    with pytest.raises(ImportError, match=r"^`perturbation`: reading ImageNet-P's .mp4 videos " + hint):
        inspect_perturbation_data(tmp_path, where="perturbation")
    with pytest.raises(ImportError, match=hint):
        next(read_imagenet_p(tmp_path, "translate"))


def test_without_pyav_the_cli_fails_before_any_work(tmp_path, monkeypatch, capsys):
    (tmp_path / "p" / "rotate" / "n01440764").mkdir(parents=True)
    (tmp_path / "p" / "rotate" / "n01440764" / "a.mp4").write_bytes(b"\x00" * 8)
    (tmp_path / "nets.py").write_text(NETS)
    monkeypatch.setitem(sys.modules, "av", None)
    out = tmp_path / "p.json"
    assert main(_argv(tmp_path, "images16", tmp_path / "p", out)) == 1
    assert 'pip install "antialias[video]"' in capsys.readouterr().err and not out.exists()


def test_videos_are_read_in_the_release_layout(tmp_path):
    rng = np.random.default_rng(1)
    translate, noise = sequences(rng, 3, 5, 16, noise=2), sequences(rng, 3, 4, 16, noise=2)
    files = write_imagenet_p(tmp_path, {"translate": translate, "gaussian_noise_2": noise})
    video = read_video(tmp_path / "translate" / files[0])
    assert video.shape == (5, 3, 16, 16) and video.dtype == torch.float32
    want = torch.from_numpy(translate[0]).permute(0, 3, 1, 2).float() / 255
    assert (video - want).abs().max() < 8 / 255  # H.264 in 4:2:0 is lossy: near-flat frames come back within 8/255
    data = open_imagenet_p(tmp_path)
    assert data.names == ("translate", "gaussian_noise_2") and len(data) == 3  # canonical order
    assert [p.relative_to(tmp_path / "translate").as_posix() for p in data.videos["translate"]] == files[:3]
    batches = list(read_imagenet_p(data, "translate", batch_size=2, limit=3))
    assert [tuple(b.shape) for b in batches] == [(2, 5, 3, 16, 16), (1, 5, 3, 16, 16)]
    assert torch.equal(batches[1][0], read_video(data.videos["translate"][2]))
    inspected = inspect_perturbation_data(tmp_path)
    assert (inspected.format, inspected.label, inspected.image_shape) == ("imagenet-p", "ImageNet-P", (3, 16, 16))


def test_imagenet_p_flip_probability_follows_the_frames(tmp_path):
    rng = np.random.default_rng(2)
    arrays = {"rotate": sequences(rng, 4, 6, 16, noise=2), "shot_noise": sequences(rng, 4, 6, 16, noise=2)}
    write_imagenet_p(tmp_path, arrays)
    (tmp_path / "nets.py").write_text(NETS)
    sys.path.insert(0, str(tmp_path))
    try:
        import nets  # the test's own factory module, written above

        result = evaluate_perturbation_files(nets.Brightness(), tmp_path, batch_size=3)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("nets", None)
    for name, seqs in arrays.items():
        expected = expected_flip_probability(seqs, noise=name == "shot_noise")
        assert result.flip_probability[name].value == pytest.approx(expected)
    assert result.config["source"] == f"ImageNet-P files at {tmp_path}"


def test_bad_videos_are_named(tmp_path):
    rng = np.random.default_rng(3)
    write_video(tmp_path / "tilt" / "n01" / "a.mp4", sequences(rng, 1, 4, 16)[0])
    write_video(tmp_path / "tilt" / "n01" / "b.mp4", sequences(rng, 1, 3, 16)[0])  # one frame short
    with pytest.raises(ValueError, match=r"every video of tilt must have 2 or more frames of one size like the first "
                       r"one's \(T, C, H, W\) = \(4, 3, 16, 16\) .*a.mp4\), got \(3, 3, 16, 16\) in .*b.mp4"):
        list(read_imagenet_p(tmp_path, "tilt"))
    (tmp_path / "tilt" / "n01" / "b.mp4").write_bytes(b"this is no video")
    with pytest.raises(ValueError, match=r"b.mp4 must be a readable video \(ImageNet-P's are H.264 .mp4\), got one "
                       r"PyAV cannot decode"):
        list(read_imagenet_p(tmp_path, "tilt"))
    with pytest.raises(ValueError, match=r"an ImageNet-P folder with scale/<wnid>/\*.mp4 videos, .* scale/ is missing "
                       r"or holds none; it holds \['tilt'\]"):
        open_imagenet_p(tmp_path, ["scale"], where="perturbation", param="perturbation_data")


# ----------------------------------------------------------------------------- the command line


def _argv(root: Path, data: str, files: Path, out: Path, *more: str) -> list[str]:
    return ["eval", "perturbation", "--model", f"{root / 'nets.py'}:brightness", "--data", f"{root / 'nets.py'}:{data}",
            "--normalize", "none", "--perturbation-data", str(files), "--out", str(out), *more]


def test_cli_evaluates_cifar10p_files_end_to_end(tmp_path, capsys):
    rng = np.random.default_rng(4)
    arrays = {"translate": sequences(rng, 6, 5, 32), "gaussian_noise_3": sequences(rng, 6, 5, 32)}
    write_cifar10p(tmp_path / "CIFAR-10-P", arrays)
    (tmp_path / "nets.py").write_text(NETS)
    out = tmp_path / "p.json"
    assert main(_argv(tmp_path, "images32", tmp_path / "CIFAR-10-P", out, "--subset", "4", "--batch-size", "3")) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("perturbation: translate flip probability") and f"wrote {tmp_path / 'p.png'}" in printed
    record = json.loads(out.read_text())
    assert record["config"]["perturbation_format"] == "cifar10-p"
    assert record["config"]["perturbations"] == ["translate", "gaussian_noise_3"]
    res = record["results"]
    assert res["sequences"] == {"translate": 4, "gaussian_noise_3": 4}  # --subset 4: the first 4 of each file
    for name, seqs in arrays.items():
        expected = expected_flip_probability(seqs[:4], noise=name == "gaussian_noise_3")
        assert res["flip_probability"][name]["value"] == pytest.approx(expected)


def test_cli_evaluates_imagenet_p_videos_end_to_end(tmp_path, capsys):
    rng = np.random.default_rng(5)
    arrays = {"scale": sequences(rng, 3, 5, 16, noise=2)}
    write_imagenet_p(tmp_path / "ImageNet-P", arrays)
    (tmp_path / "nets.py").write_text(NETS)
    out = tmp_path / "p.json"
    assert main(_argv(tmp_path, "images16", tmp_path / "ImageNet-P", out, "--step", "2")) == 0
    record = json.loads(out.read_text())
    assert record["config"]["perturbation_format"] == "imagenet-p" and record["results"]["step"] == 2
    means = arrays["scale"].reshape(3, 5, -1).mean(-1) / 255
    pred = np.abs(means[..., None] - (2 * np.arange(4) + 1) / 8).argmin(-1)
    expected = float((pred[:, 2:] != pred[:, :-2]).mean())  # step 2: pairs (t, t + 2)
    assert record["results"]["flip_probability"]["scale"]["value"] == pytest.approx(expected)
    assert main(_argv(tmp_path, "images32", tmp_path / "ImageNet-P", tmp_path / "q.json")) == 1
    err = capsys.readouterr().err
    assert "`perturbation`: `data` must be the clean set of the ImageNet-P files, with 3x16x16 images" in err
