"""Errors of a model under corruptions: on the fly (needs the library) and over the released sets."""

import pytest
import torch
from corruption_helpers import SEV, BadOutput, needs_library, tiny_model, write_cifar10c, write_imagenet_c

from antialias.data.folder import ImageFolder
from antialias.eval.corruption.evaluate import evaluate_cifar10c, evaluate_corruptions, evaluate_imagenet_c
from antialias.eval.corruption.generate import corrupt_images


def test_cifar10c_evaluation_equals_manual_loop(tmp_path):
    arrays, labels = write_cifar10c(tmp_path, ["fog", "gaussian_noise"])
    model = tiny_model()
    r = evaluate_cifar10c(model, tmp_path, batch_size=4)
    with torch.no_grad():
        for name in ("fog", "gaussian_noise"):
            x = torch.from_numpy(arrays[name]).permute(0, 3, 1, 2).float() / 255
            wrong = (model(x).argmax(1).view(5, 6) != torch.from_numpy(labels)).sum(1)
            assert [r.errors[name][s].successes for s in SEV] == wrong.tolist()
    assert r.corruptions == ["gaussian_noise", "fog"] and r.images == 6


def test_cifar10c_model_with_wrong_output_shape(tmp_path):
    write_cifar10c(tmp_path, ["fog"])
    with pytest.raises(ValueError, match=r"the model must return logits of shape \(N, classes\)"):
        evaluate_cifar10c(BadOutput(), tmp_path, corruptions=["fog"])


def test_imagenet_c_folders(tmp_path):
    write_imagenet_c(tmp_path, ["fog", "snow"])
    model = tiny_model()
    r = evaluate_imagenet_c(model, tmp_path, batch_size=3, normaliser="alexnet")
    assert r.corruptions == ["snow", "fog"] and r.images == 4 and "snow" in r.ce and r.mce is None
    with torch.no_grad():
        ds = ImageFolder(tmp_path / "fog" / "4")
        x = torch.stack([ds[i][0] for i in range(len(ds))])
        wrong = int((model(x).argmax(1) != ds.targets).sum())
    assert r.errors["fog"][4].successes == wrong
    (tmp_path / "fog" / "2" / "n02" / "img1.png").unlink()
    with pytest.raises(ValueError, match="must hold the same class folders and files"):
        evaluate_imagenet_c(model, tmp_path)


@needs_library
def test_evaluate_corruptions_equals_manual_loop():
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(6, 3, 32, 32, generator=g), torch.randint(0, 4, (6,), generator=g)
    model = tiny_model()
    names, sev = ["gaussian_noise", "contrast"], [1, 4]
    r = evaluate_corruptions(model, [(x[:4], y[:4]), (x[4:], y[4:])], corruptions=names, severities=sev, seed=3)
    with torch.no_grad():
        for name in names:
            for s in sev:
                wrong = int((model(corrupt_images(x, name, s, seed=3)).argmax(1) != y).sum())
                assert r.errors[name][s].successes == wrong
        assert r.clean_error.successes == int((model(x).argmax(1) != y).sum())
    with pytest.raises(ValueError, match=r"the model must return logits of shape \(N, classes\)"):
        evaluate_corruptions(BadOutput(), [(x, y)], corruptions=["contrast"], severities=[1])
