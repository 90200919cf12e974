"""The weights registry: all 59 published checkpoints, their metadata, and name resolution.

Expected values are read independently from ../shared/reference (the checkpoint list, the paper's
table and the published fine-tuned numbers), not from the registry's own tables.
"""

from __future__ import annotations

import json
import math
import re
import socket
from pathlib import Path

import pytest

from antialias.models import _weights
from antialias.models._weights import (
    ResNet18_Weights,
    ResNet50_Weights,
    VGG16_BN_Weights,
    Weights,
    WeightsEnum,
    get_model_weights,
    get_weights,
    list_weights,
    resolve,
)

REFERENCE = Path(__file__).resolve().parents[1] / "reference"  # copy of ../shared/reference
FILTER_NAMES = {2: "RECT2", 3: "TRI3", 4: "TRI4", 5: "BIN5"}


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here may reach the network (loading is tested in test_download.py)."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise ConnectionRefusedError("network access blocked by the test suite")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def _reference(name: str) -> Path:
    path = REFERENCE / name
    if not path.exists():
        raise FileNotFoundError(f"reference file {path} is missing from the repository")
    return path


ALL = [member for cls in _weights._ENUMS.values() for member in cls]


def test_registry_has_59_unique_entries() -> None:
    names = list_weights()
    assert len(names) == 59 == len(ALL)
    assert len(set(names)) == 59
    assert len({m.url for m in ALL}) == 59
    assert len({m.sha256_prefix for m in ALL}) == 59
    assert names == [m.full_name for m in ALL]


def test_registry_matches_the_published_list() -> None:
    published = json.loads(_reference("adobe_checkpoints.json").read_text())["checkpoints"]
    expected = {c["name"]: (c["url"], c["sha256_prefix"]) for c in published}
    ours = {m.meta["checkpoint"]: (m.url, m.sha256_prefix) for m in ALL}
    assert ours == expected


@pytest.mark.parametrize("member", ALL, ids=lambda m: m.full_name)
def test_each_entry_is_self_consistent(member: WeightsEnum) -> None:
    w = member.value
    assert isinstance(w, Weights)
    stem, suffix = re.fullmatch(r"(.+)-([0-9a-f]+)\.pth", w.file_name).groups()
    assert suffix == w.sha256_prefix and len(suffix) == 8
    arch, k, ft = re.fullmatch(r"(.+)_lpf(\d)(_finetune)?", stem).groups()
    assert (w.arch, w.filter_size, w.finetuned) == (arch, int(k), ft is not None)
    assert member.name == f"IMAGENET1K_{FILTER_NAMES[int(k)]}" + ("_FT" if ft else "")
    assert w.full_name == f"{arch}.{member.name.lower()}"
    assert w.meta["checkpoint"] == stem
    assert w.meta["filter"] == FILTER_NAMES[int(k)].lower()
    assert w.meta["num_classes"] == 1000
    assert w.meta["license"] == "CC BY-NC-SA 4.0 (Adobe)"
    pre = w.meta["preprocessing"]
    assert (pre["resize"], pre["center_crop"]) == (256, 224)
    assert pre["mean"] == (0.485, 0.456, 0.406) and pre["std"] == (0.229, 0.224, 0.225)
    assert get_weights(w.full_name) is w and get_weights(stem) is w
    assert resolve(w.full_name.upper(), arch) is w


def test_every_arch_has_a_fine_tuned_default() -> None:
    assert len(_weights._ENUMS) == 23
    for arch, cls in _weights._ENUMS.items():
        assert cls.DEFAULT is cls.IMAGENET1K_TRI4_FT
        assert cls.DEFAULT.finetuned and cls.DEFAULT.filter_size == 4
        assert get_model_weights(arch) is cls
        assert list_weights(arch) == [m.full_name for m in cls]
    assert repr(ResNet50_Weights.DEFAULT) == "ResNet50_Weights.IMAGENET1K_TRI4_FT"


def _paper_table() -> dict[tuple[str, int], tuple[float, float]]:
    """(arch, filter size) -> (top-1, consistency) parsed from paper_results.md's table."""
    text = _reference("paper_results.md").read_text()
    section = text.split("## ImageNet accuracy / consistency per filter")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("|") and "---" not in line]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    sizes = {"Rect-2": 2, "Tri-3": 3, "Bin-5": 5, "Tri-4 (2020)": 4}
    arch_of = {"VGG16bn": "vgg16_bn", "MobileNet-v2": "mobilenet_v2"}
    table = {}
    for row in rows[1:]:
        cells = [c.strip() for c in row.strip("|").split("|")]
        arch = arch_of.get(cells[0], cells[0].lower())
        for col, cell in zip(header[1:], cells[1:], strict=True):
            if col in sizes:
                top1, cons = (float(v) for v in cell.split("/"))
                table[arch, sizes[col]] = (top1, cons)
    return table


def _finetuned_table() -> dict[str, tuple[float, float]]:
    text = _reference("zoo_layout.md").read_text()
    found = re.findall(r"(\w+) \d+\.\d+/\d+\.\d+ ->\s*(\d+\.\d+)/(\d+\.\d+)", text)
    return {arch: (float(a), float(c)) for arch, a, c in found}


def test_published_numbers_match_the_paper_and_readme() -> None:
    paper, finetuned = _paper_table(), _finetuned_table()
    assert len(paper) == 36 and len(finetuned) == 6
    for member in ALL:
        w = member.value
        if w.finetuned:
            expected = finetuned.get(w.arch, (None, None))
        else:
            expected = paper[w.arch, w.filter_size]  # every from-scratch model is in the table
        assert (w.meta["top1"], w.meta["consistency"]) == expected, w.full_name


@pytest.mark.parametrize("arch", sorted(_weights._ENUMS))
def test_num_params_matches_reference_keys(arch: str) -> None:
    data = json.loads(_reference(f"adobe_state_dict/{arch}_lpf4.json").read_text())
    buffers = (".filt", "running_mean", "running_var", "num_batches_tracked")
    expected = sum(math.prod(shape) for name, shape, _ in data["keys"] if not name.endswith(buffers))
    for member in get_model_weights(arch):
        assert member.meta["num_params"] == expected


# --------------------------------------------------------------------------- resolve


def test_resolve_accepts_every_form() -> None:
    w = ResNet50_Weights.IMAGENET1K_TRI3.value
    assert resolve(None, "resnet50") is None
    assert resolve(w, "resnet50") is w
    assert resolve(ResNet50_Weights.IMAGENET1K_TRI3, "resnet50") is w
    assert resolve("resnet50.imagenet1k_tri3", "resnet50") is w
    assert resolve("  ResNet50.IMAGENET1K_TRI3 ", "ResNet50") is w
    assert resolve("IMAGENET1K_TRI3", "resnet50") is w
    assert resolve("resnet50_lpf3", "resnet50") is w
    assert resolve("DEFAULT", "vgg16_bn") is VGG16_BN_Weights.IMAGENET1K_TRI4_FT.value
    assert resolve("resnet50.default", "resnet50") is ResNet50_Weights.IMAGENET1K_TRI4_FT.value


def test_unknown_name_suggests_close_ones() -> None:
    with pytest.raises(
        ValueError, match=r"got 'resnet50\.imagenet1k_tri4_f'\. Did you mean 'resnet50\.imagenet1k_tri4_ft'"
    ):
        resolve("resnet50.imagenet1k_tri4_f", "resnet50")
    with pytest.raises(ValueError, match=r"Did you mean 'resnet50.default'"):
        resolve("resnt50.default", "resnet50")
    with pytest.raises(ValueError, match=r"`get_weights`: `name` must be a published weights name, got 'nope'"):
        get_weights("nope")
    with pytest.raises(
        ValueError,
        match=r"`arch` must be an architecture with published weights, got 'resnet51'\. Did you mean 'resnet50'",
    ):
        list_weights("resnet51")


@pytest.mark.parametrize(
    "weights",
    [ResNet18_Weights.DEFAULT, ResNet18_Weights.DEFAULT.value, "resnet18.imagenet1k_tri4_ft", "resnet18_lpf4_finetune"],
    ids=["enum", "weights", "name", "stem"],
)
def test_weights_of_another_arch_are_refused(weights) -> None:
    with pytest.raises(
        ValueError,
        match=r"weights 'resnet18.imagenet1k_tri4_ft' are for resnet18, not resnet50\. Use ResNet50_Weights",
    ):
        resolve(weights, "resnet50")


def test_weights_for_an_arch_without_published_weights() -> None:
    with pytest.raises(ValueError, match=r"are for resnet18, not cifar_resnet20\. No weights are published"):
        resolve(ResNet18_Weights.DEFAULT, "cifar_resnet20")
    with pytest.raises(ValueError, match="must be a published weights name, got 'default'"):
        resolve("default", "cifar_resnet20")


def test_resolve_type_error() -> None:
    with pytest.raises(TypeError, match=r"`resolve`: `weights` must be a Weights, .* got 3\."):
        resolve(3, "resnet50")


def test_weights_are_frozen_and_hashable() -> None:
    w = ResNet50_Weights.DEFAULT.value
    with pytest.raises(AttributeError):
        w.filter_size = 3  # type: ignore[misc]
    assert len({m.value for m in ALL}) == 59
    assert ResNet50_Weights.DEFAULT.cache_path("/c") == Path("/c") / "resnet50_lpf4_finetune-cad66808.pth"


def test_every_enum_is_exported() -> None:
    exported = set(_weights.__all__)
    assert {cls.__name__ for cls in _weights._ENUMS.values()} <= exported
    assert {"Weights", "WeightsEnum", "resolve", "list_weights", "get_weights", "get_model_weights"} <= exported


def test_table_rows_and_enum_members_match_one_to_one() -> None:
    """The data (models/_weights_table.py) and the API (enum members) name the same 59 files."""
    from antialias.models import _weights_table

    used = sorted(m.meta["checkpoint"] for m in ALL)
    assert used == sorted(_weights_table.SHA256_PREFIXES) and len(used) == 59
    for m in ALL:
        stem = m.meta["checkpoint"]
        assert m.url == f"{_weights_table.BASE_URL}{stem}-{_weights_table.SHA256_PREFIXES[stem]}.pth"
    assert set(_weights_table.NUM_PARAMS) == {m.arch for m in ALL}
