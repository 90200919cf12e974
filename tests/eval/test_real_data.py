"""``antialias eval`` on real photos (scikit-image's bundled images) as a user would run it: a plain
``<class>/<image>`` folder, a class map, the model's own normalisation, a torch ``.pth`` state_dict into a
``file.py:function`` model, and the paper's ImageNet protocol on that folder; no workaround.

The state_dict is built so that the model classifies every photo's centre crop correctly when (and only
when) the images reach it as the model expects: ``(x * 255 - 127) / 128`` and the class map's indices.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from antialias.cli import main
from antialias.data import ImageFolder
from antialias.data.transforms import ResizeCenterCrop
from antialias.eval.consistency import ConsistencyConfig, centre_view

skimage_data = pytest.importorskip("skimage.data")

#: folder -> (scikit-image image, the class index the class map gives it)
PHOTOS = {"astronaut": ("astronaut", 834), "coffee": ("coffee", 967), "chelsea": ("chelsea", 281),
          "rocket": ("rocket", 812), "ihc": ("immunohistochemistry", 100), "colorwheel": ("colorwheel", 200)}

FACTORY = textwrap.dedent('''
    import torch
    from torch import nn


    class Net(nn.Module):
        def __init__(self, num_classes=1000, normalise_inside=False):
            super().__init__()
            self.normalise_inside = normalise_inside
            self.features = nn.Sequential(nn.Conv2d(3, 16, 5, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                          nn.Flatten())
            self.fc = nn.Linear(16, num_classes)

        def forward(self, x):
            if self.normalise_inside:
                x = (x * 255 - 127) / 128
            return self.fc(self.features(x))


    def net(normalise_inside=False):
        return Net(normalise_inside=normalise_inside)
''')


def _photo(name: str) -> np.ndarray:
    return getattr(skimage_data, name)()[..., :3]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    """A plain folder of real photos, the same photos in integer-named folders, a class map, the factory,
    and a trained-looking state_dict."""
    root = tmp_path_factory.mktemp("real")
    plain, by_index = root / "photos", root / "by_index"
    for folder, (name, index) in PHOTOS.items():
        for base, sub in ((plain, folder), (by_index, str(index))):
            (base / sub).mkdir(parents=True)
            Image.fromarray(_photo(name)).save(base / sub / f"{name}.jpg", quality=95)
    cmap = root / "class_map.json"
    cmap.write_text(json.dumps({folder: index for folder, (_, index) in PHOTOS.items()}))
    factory = root / "model.py"
    factory.write_text(FACTORY)
    namespace: dict = {}
    exec(compile(FACTORY, str(factory), "exec"), namespace)  # the same class the CLI will import
    torch.manual_seed(0)
    net = namespace["net"]()
    # Features of each photo's centre crop as the evaluation will see it (paper: 256, crop 224 at the centre).
    ds = ImageFolder(plain, transform=ResizeCenterCrop(256, 256), class_map=cmap)
    x = torch.stack([ds[i][0] for i in range(len(ds))])
    x = centre_view(x, ConsistencyConfig(crop_size=224, max_shift=31))
    labels = torch.tensor([ds[i][1] for i in range(len(ds))])
    with torch.no_grad():
        f = net.features((x * 255 - 127) / 128)  # (6, 16)
        centred = f - f.mean(0)
        u = centred / centred.norm(dim=1, keepdim=True)
        net.fc.weight.zero_()
        net.fc.bias.zero_()
        net.fc.weight[labels] = u  # logit of class c_i: u_i . (f - mean f), largest for image i (Cauchy-Schwarz)
        net.fc.bias[labels] = -(u * f.mean(0)).sum(1)
    weights = root / "weights.pth"
    torch.save(net.state_dict(), weights)
    return {"plain": plain, "by_index": by_index, "cmap": cmap, "factory": factory, "weights": weights, "root": root}


def _eval(photos, capsys, *extra: str, metric: str = "consistency", out: str = "r.json") -> tuple[int, dict, str]:
    path = photos["root"] / out
    argv = ["eval", metric, "--model", f"{photos['factory']}:net", "--checkpoint", str(photos["weights"]),
            "--device", "cpu", "--batch-size", "3", "--out", str(path), "--force", *extra]
    code = main(argv)
    captured = capsys.readouterr()
    record = json.loads(path.read_text()) if code == 0 else {}
    return code, record, captured.out + captured.err


PAPER = ("--data-preset", "imagenet", "--mean", "127", "--std", "128", "--scale", "255")


def test_plain_folder_class_map_own_normalisation_pth_and_paper_protocol(photos, capsys):
    code, rec, text = _eval(photos, capsys, "--data", str(photos["plain"]), "--class-map", str(photos["cmap"]),
                            *PAPER, "--passes", "3")
    assert code == 0, text
    res, data = rec["results"], rec["data"]
    assert res["centre_accuracy"]["value"] == 1.0 and res["centre_accuracy"]["total"] == 6
    assert data["label_source"] == "class map" and data["size"] == 6 and data["num_classes"] is None
    assert data["normalization_source"] == "given: (x * 255 - 127) / 128"
    assert data["given_normalization"] == {"mean": [127.0], "std": [128.0], "scale": 255.0}
    np.testing.assert_allclose(data["normalization"]["mean"], [127 / 255] * 3)
    assert rec["config"]["crop_size"] == 224 and rec["config"]["max_shift"] == 31  # the paper's protocol
    assert data["resize"] == 256 and data["center_crop"] == 256 and data["image_shape"] == [3, 256, 256]
    assert rec["model"]["checkpoint"].endswith("weights.pth") and rec["model"]["num_outputs"] == 1000
    by_image = res["consistency_by_image"]
    assert by_image["n"] == 6 and by_image["outcomes"] == 18 and "bootstrap over images" in by_image["method"]
    assert by_image["low"] <= res["consistency"]["value"] == by_image["value"] <= by_image["high"]
    assert res["accuracy_by_image"]["n"] == 6
    assert "centre_accuracy 100.00%" in text and "consistency_by_image" in text and "warning" not in text


def test_integer_folder_names_are_class_indices_without_a_map(photos, capsys):
    code, rec, text = _eval(photos, capsys, "--data", str(photos["by_index"]), *PAPER)
    assert code == 0, text
    assert rec["data"]["label_source"] == "integer folder names"
    assert rec["results"]["centre_accuracy"]["value"] == 1.0 and "warning" not in text


def test_sorted_names_on_a_1000_class_model_warn_twice(photos, capsys):
    code, rec, text = _eval(photos, capsys, "--data", str(photos["plain"]), "--class-map", "sorted", *PAPER)
    assert code == 0, text
    assert rec["results"]["centre_accuracy"]["value"] == 0.0
    assert "antialias eval consistency: warning: `consistency`: the 6 class folders are labelled 0..5" in text
    assert "not above chance (0.10% for 1000 classes)" in text


def test_a_model_that_normalises_itself_plus_default_normalisation_warns(photos, capsys):
    kwargs = ("--model-kwargs", '{"normalise_inside": true}', "--data-preset", "imagenet")
    code, rec, text = _eval(photos, capsys, "--data", str(photos["plain"]), "--class-map", str(photos["cmap"]),
                            *kwargs)
    assert code == 0, text
    assert "the model normalises its input itself" in text and "normalised twice" in text
    code, rec, text = _eval(photos, capsys, "--data", str(photos["plain"]), "--class-map", str(photos["cmap"]),
                            *kwargs, "--normalize", "none")
    assert code == 0 and "warning" not in text, text
    assert rec["results"]["centre_accuracy"]["value"] == 1.0


def test_stability_on_the_same_folder(photos, capsys):
    code, rec, text = _eval(photos, capsys, "--data", str(photos["plain"]), "--class-map", str(photos["cmap"]),
                            *PAPER, "--max-shift", "2", metric="stability")
    assert code == 0, text
    assert rec["results"]["accuracy"][0]["total"] == 6


@pytest.mark.parametrize("content, match", [
    ("nan", "must hold finite weights, got NaN or inf in 'fc.weight'"),
    ("object", "readable with weights_only=True"),
    ("shape", "must fit .* got a mismatch"),
])
def test_bad_state_dicts_are_refused_naming_the_command(photos, capsys, tmp_path, content, match):
    state = torch.load(photos["weights"], weights_only=True)
    bad = tmp_path / "bad.pth"
    if content == "nan":
        state["fc.weight"][0, 0] = float("nan")
        torch.save(state, bad)
    elif content == "object":
        torch.save({"net": torch.nn.Linear(2, 2)}, bad)  # a pickled module: refused by weights_only
    else:
        state["fc.weight"] = state["fc.weight"][:10]
        torch.save(state, bad)
    argv = ["eval", "consistency", "--model", f"{photos['factory']}:net", "--checkpoint", str(bad), "--data",
            str(photos["plain"]), "--device", "cpu", "--out", str(tmp_path / "x.json")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("antialias eval consistency: error: `eval`: ")
    assert __import__("re").search(match, err), err
    assert not (tmp_path / "x.json").exists()


def test_a_folder_with_only_train_inside_is_refused_clearly(tmp_path, photos, capsys):
    (tmp_path / "train" / "cat").mkdir(parents=True)
    Image.fromarray(_photo("chelsea")).save(tmp_path / "train" / "cat" / "c.png")
    argv = ["eval", "consistency", "--model", f"{photos['factory']}:net", "--data", str(tmp_path), "--device",
            "cpu", "--out", str(tmp_path / "x.json")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "antialias eval consistency: error: `eval`: `data` must be a folder of class folders" in err
    assert "only train" in err


# ------------------------------------------------------------------ every error names the command the user ran


@pytest.mark.parametrize("metric", ["consistency", "stability", "equivariance", "worst-case"])
@pytest.mark.parametrize("extra, code, message", [
    (("--filter-size", "3"), 1, "`eval`: `filter_size` must be None for a factory without a `filter_size` parameter"),
    (("--class-map", "missing.json"), 1, "`read_class_map`: `class_map` must be an existing .json or text file"),
    (("--std", "0"), 2, "`eval`: `std` must be one or more finite numbers > 0"),
    (("--mean", "0.5", "--normalize", "none"), 2, "`eval`: `normalize` must be 'auto' (the default) with --mean"),
])
def test_errors_name_the_command_the_user_ran(photos, capsys, tmp_path, metric, extra, code, message):
    argv = ["eval", metric, "--model", f"{photos['factory']}:net", "--data", str(photos["plain"]), "--device", "cpu",
            "--out", str(tmp_path / "x.json"), *extra]
    if code == 2:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
    else:
        assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"antialias eval {metric}: error: {message}" in err, err
    assert "`train`" not in err
