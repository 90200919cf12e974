"""Parity with the published anti-aliased checkpoints' layout and computation, and with torchvision's
baselines: exact state_dict keys and shapes, strict loading of reference-layout checkpoints (with
their ``.filt`` buffers), and logits on the deterministic inputs of ../shared/reference/zoo_layout.md.

Speed (the 50 reference cases are the bulk of this file): models are built on the meta device and
materialised with ``to_empty`` (the default init would be overwritten by the fill anyway; the blur
filters are then rebuilt by ``reset_parameters``), and the fill of one architecture is reused by its
filter-size variants, whose non-``.filt`` entries are identical.
"""

from __future__ import annotations

import functools
import json

import pytest
import torch
from torch import nn
from zoo_helpers import (
    DATA_DIR,
    SHARED_DIR,
    check_logits,
    fill_entry,
    parity_fill,
    parity_input,
    reference_cases,
    torchvision_cases,
)

from antialias.layers import BlurPool2d
from antialias.models import get_model

CASES = reference_cases()
TV_PATH = DATA_DIR / "torchvision_keys.json"


def build_empty(name: str, filter_size: int | None) -> nn.Module:
    """The model with uninitialised parameters (filled by the caller) and correct blur filters."""
    with torch.device("meta"):
        model = get_model(name, filter_size=filter_size)
    model = model.to_empty(device="cpu")
    for module in model.modules():
        if isinstance(module, BlurPool2d):
            module.reset_parameters()
    return model.eval()


@functools.lru_cache(maxsize=1)
def _fill_except_filt(entries: tuple[tuple[int, str, tuple[int, ...], str], ...]) -> dict[str, torch.Tensor]:
    return {name: fill_entry(i, name, list(shape), dtype) for i, name, shape, dtype in entries}


def reference_state_dict(keys: list[list]) -> dict[str, torch.Tensor]:
    """The reference-layout state_dict, ``.filt`` entries included, filled by the parity rule.

    The filter-size variants of one architecture differ only in their ``.filt`` entries (same
    count, same positions), so everything else is filled once and reused (cache of one).
    """
    entries = tuple((i, n, tuple(s), d) for i, (n, s, d) in enumerate(keys) if not n.endswith(".filt"))
    rest = _fill_except_filt(entries)
    return {n: fill_entry(i, n, s, d) if n.endswith(".filt") else rest[n] for i, (n, s, d) in enumerate(keys)}


@pytest.fixture(scope="module", autouse=True)
def _release_cache():
    yield
    _fill_except_filt.cache_clear()


def test_copied_reference_files_match_the_shared_originals():
    if not SHARED_DIR.is_dir():
        pytest.skip("../shared/reference/ is not beside this checkout (CI): tests/reference is the reference")
    originals = {p.stem: json.loads(p.read_text()) for p in SHARED_DIR.glob("*.json")}
    assert originals == CASES
    assert len(CASES) == 50


@pytest.mark.parametrize("case", sorted(CASES))
def test_reference_layout_and_logits(case):
    data = CASES[case]
    arch, k = case.rsplit("_lpf", 1)
    model = build_empty(arch, int(k))
    ours = [[name, list(t.shape), str(t.dtype).removeprefix("torch.")] for name, t in model.state_dict().items()]
    assert ours == [entry for entry in data["keys"] if not entry[0].endswith(".filt")]
    filts = {entry[0].removesuffix(".filt"): entry[1] for entry in data["keys"] if entry[0].endswith(".filt")}
    blurs = {name: m for name, m in model.named_modules() if isinstance(m, BlurPool2d)}
    assert sorted(blurs) == sorted(filts)  # every reference blur is one of ours, and no other
    for name, shape in filts.items():
        assert (blurs[name].channels, *blurs[name].kernel.shape) == (shape[0], *shape[2:])

    state = reference_state_dict(data["keys"])
    model.load_state_dict(state, strict=True)  # .filt entries are checked and dropped by BlurPool2d
    assert all(name in state for name in (f"{n}.filt" for n in filts))  # the caller's dict is intact
    with torch.inference_mode():
        for key, size in (("parity", 224), ("parity_odd", 161)):
            check_logits(model(parity_input(size)), data[key], f"{case} at {size}x{size}")


# --------------------------------------------------------------------------- strict loading


def _resnet18_reference(k: int = 4) -> dict[str, torch.Tensor]:
    return parity_fill(CASES[f"resnet18_lpf{k}"]["keys"])


def test_strict_load_refuses_a_checkpoint_of_another_filter():
    model = get_model("resnet18", filter_size=4)
    with pytest.raises(RuntimeError, match=r"maxpool\.1\.filt: the checkpoint's blur filter \(shape \(64, 1, 3, 3\)\)"):
        model.load_state_dict(_resnet18_reference(3))


def test_strict_load_refuses_a_corrupted_filter():
    state = _resnet18_reference()
    state["layer2.0.conv2.0.filt"] = state["layer2.0.conv2.0.filt"] * 1.5
    with pytest.raises(RuntimeError, match=r"layer2\.0\.conv2\.0\.filt"):
        get_model("resnet18", filter_size=4).load_state_dict(state)


def test_strict_load_lists_missing_and_unexpected_keys():
    state = _resnet18_reference()
    del state["layer3.0.downsample.1.weight"]
    state["layer3.0.extra.weight"] = torch.zeros(1)
    with pytest.raises(RuntimeError) as info:
        get_model("resnet18", filter_size=4).load_state_dict(state)
    assert '"layer3.0.downsample.1.weight"' in str(info.value)
    assert '"layer3.0.extra.weight"' in str(info.value)


def test_baseline_checkpoint_does_not_load_into_the_anti_aliased_layout():
    baseline = get_model("resnet18", filter_size=None).state_dict()
    with pytest.raises(RuntimeError, match=r"layer2\.0\.conv2\.1\.weight"):
        get_model("resnet18", filter_size=4).load_state_dict(baseline)


def test_non_strict_load_still_drops_filt():
    result = get_model("resnet18", filter_size=4).load_state_dict(_resnet18_reference(), strict=False)
    assert result.missing_keys == [] and result.unexpected_keys == []


# --------------------------------------------------------------------------- torchvision baselines

TV = torchvision_cases() if TV_PATH.exists() else {}


@pytest.mark.skipif(not TV, reason="tests/models/data/torchvision_keys.json not generated")
@pytest.mark.parametrize("arch", sorted(TV))
def test_baseline_matches_torchvision(arch):
    data = TV[arch]
    model = build_empty(arch, None)
    ours = [[name, list(t.shape), str(t.dtype).removeprefix("torch.")] for name, t in model.state_dict().items()]
    assert ours == data["keys"]
    model.load_state_dict(parity_fill(data["keys"]), strict=True)
    with torch.inference_mode():
        check_logits(model(parity_input(data["parity"]["size"])), data["parity"], f"{arch} baseline")


def test_torchvision_facts_cover_every_reference_architecture():
    if not TV:
        pytest.skip("tests/models/data/torchvision_keys.json not generated")
    assert {case.rsplit("_lpf", 1)[0] for case in CASES} == set(TV)


def test_anti_aliased_resnet_renames_only_where_blurs_go():
    """Independent of the JSON facts: baseline and anti-aliased ResNet-50 hold the same tensors, and
    the names differ only inside the strided blocks (conv3 -> conv3.1, downsample.i -> .i+1)."""
    base = get_model("resnet50", filter_size=None).state_dict()
    anti = get_model("resnet50", filter_size=4).state_dict()
    assert [t.shape for t in base.values()] == [t.shape for t in anti.values()]
    renamed = {old: new for old, new in zip(base, anti, strict=True) if old != new}
    expected = {}
    for layer in ("layer2", "layer3", "layer4"):
        for leaf in ("weight",):
            expected[f"{layer}.0.conv3.{leaf}"] = f"{layer}.0.conv3.1.{leaf}"
            expected[f"{layer}.0.downsample.0.{leaf}"] = f"{layer}.0.downsample.1.{leaf}"
        for leaf in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            expected[f"{layer}.0.downsample.1.{leaf}"] = f"{layer}.0.downsample.2.{leaf}"
    assert renamed == expected
