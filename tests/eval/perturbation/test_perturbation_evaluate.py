"""FP, FR and T5D of a model over generated sequences and CIFAR-10-P files, against plain loops."""

import json

import numpy as np
import pytest
import torch
from perturbation_helpers import ConstantModel, reference_flips, tiny_model
from torch import nn

from antialias.eval._names import GENERATED_PERTURBATIONS
from antialias.eval.perturbation.evaluate import evaluate_cifar10p, evaluate_perturbations
from antialias.eval.perturbation.generate import perturbation_sequence


def test_constant_model_never_flips():
    x = torch.rand(3, 3, 16, 16)
    r = evaluate_perturbations(ConstantModel(), [(x, torch.zeros(3))])
    assert r.perturbations == list(GENERATED_PERTURBATIONS)
    for name in GENERATED_PERTURBATIONS:
        assert r.flip_probability[name].value == 0.0 and r.t5d[name].value == 0.0
        assert r.flip_probability[name].high > 0  # still an interval, not a point
    json.dumps(r.to_dict())


def test_generated_evaluation_equals_manual_loop():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, 16, 16, generator=g)
    model = tiny_model()
    r = evaluate_perturbations(model, [x[:2], x[2:]], perturbations=["translate", "shot_noise"], seed=4)
    with torch.no_grad():
        for name in ("translate", "shot_noise"):
            seq = torch.cat(
                [perturbation_sequence(x[:2], name, seed=4), perturbation_sequence(x[2:], name, seed=4, first_index=2)]
            )
            logits = model(seq.flatten(0, 1)).view(5, seq.shape[1], -1)
            assert r.flip_probability[name].value == pytest.approx(reference_flips(logits, name == "shot_noise", 1))


def test_cifar10p_evaluation_equals_manual_loop(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"translate": rng.integers(0, 256, (5, 16, 32, 32, 3), dtype=np.uint8),
              "gaussian_noise_2": rng.integers(0, 256, (5, 31, 32, 32, 3), dtype=np.uint8)}  # fmt: skip
    for name, a in arrays.items():
        np.save(tmp_path / f"{name}.npy", a)
    model = tiny_model()
    r = evaluate_cifar10p(model, tmp_path, batch_size=3)
    assert r.perturbations == ["translate", "gaussian_noise_2"]
    with torch.no_grad():
        for name, a in arrays.items():
            frames = torch.from_numpy(a).permute(0, 1, 4, 2, 3).float() / 255
            logits = model(frames.flatten(0, 1)).view(5, a.shape[1], -1)
            assert r.flip_probability[name].value == pytest.approx(reference_flips(logits, name != "translate", 1))


# --------------------------------------------------------------------------- bad input


def test_unknown_perturbation_suggests_close_names():
    with pytest.raises(ValueError, match="Did you mean 'motion_blur'"):
        evaluate_perturbations(ConstantModel(), [], perturbations=["motion"])


def test_model_with_wrong_output_shape():
    class BadOutput(nn.Module):
        def forward(self, x):
            return x.mean((2, 3), keepdim=True)

    with pytest.raises(ValueError, match=r"the model must return logits of shape \(N, classes\)"):
        evaluate_perturbations(BadOutput(), [torch.rand(2, 3, 16, 16)], perturbations=["rotate"])
