"""antialias.eval.config: frozen configs, validated in __post_init__, unknown keys refused, data-dependent defaults."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from antialias.eval._cli import field_help
from antialias.eval.config import (
    METRIC_CONFIGS,
    ConsistencyConfig,
    CorruptionConfig,
    EquivarianceConfig,
    EvalOptions,
    PerturbationConfig,
    StabilityConfig,
)

ALL = [EvalOptions, *METRIC_CONFIGS.values()]


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_every_field_is_documented_and_the_config_is_frozen(cls):
    helps = field_help(cls)
    assert [f.name for f in dataclasses.fields(cls)] == list(helps)  # the docstring's Args, in field order
    assert all(len(text) > 10 for text in helps.values())
    config = cls()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 1  # type: ignore[misc]


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_from_dict_round_trips_and_refuses_unknown_keys(cls):
    config = cls()
    assert cls.from_dict(dataclasses.asdict(config)) == config
    first = dataclasses.fields(cls)[0].name
    with pytest.raises(
        ValueError, match=rf"`{cls.__name__}`: `{first}x` must be a {cls.__name__} field, got unknown key"
    ):
        cls.from_dict({first + "x": 1})


@settings(max_examples=30, deadline=None)
@given(max_shift=st.integers(0, 40), crop=st.one_of(st.none(), st.integers(1, 256)),
       protocol=st.sampled_from(["crop", "circular"]), imagenet=st.booleans())
def test_stability_for_data_keeps_what_is_given(max_shift, crop, protocol, imagenet):
    data = "imagenet:/x" if imagenet else "cifar10"
    config = StabilityConfig.for_data(data, max_shift=max_shift, crop_size=crop, protocol=protocol)
    assert (config.max_shift, config.crop_size, config.protocol) == (max_shift, crop, protocol)
    default = StabilityConfig.for_data(data)
    assert (default.max_shift, default.crop_size) == ((32, 224) if imagenet else (8, None))


def test_equivariance_pad_to_zero_means_none_and_layers_become_a_tuple():
    config = EquivarianceConfig(pad_to=0, layers=["0", "2"])
    assert config.pad_to is None and config.layers == ("0", "2")


def test_filter_size_auto_means_not_given():
    assert not EvalOptions().given_filter_size
    assert EvalOptions(filter_size=None).given_filter_size and EvalOptions(filter_size="tri3").given_filter_size


def test_python_only_values_are_accepted():
    options = EvalOptions(model=torch.nn.Linear(2, 2), normalize=((0.5,), (0.25,)), device=torch.device("cpu"))
    assert options.device.type == "cpu"


@pytest.mark.parametrize(
    "build,error,match",
    [
        (lambda: EvalOptions(batch_size=0), ValueError, r"^`eval`: `batch_size` must be an integer >= 1, got 0\.$"),
        (
            lambda: EvalOptions(split="valid"),
            ValueError,
            r"`split` must be one of 'train', 'test', 'val', got 'valid'\. Did you mean 'val'\?",
        ),
        (lambda: EvalOptions(amp="bf-16"), ValueError, "Did you mean 'bf16'"),
        (lambda: EvalOptions(out="r.txt"), ValueError, r"`out` must be a path ending in \.json, got 'r\.txt'"),
        (lambda: EvalOptions(subset=True), ValueError, "`subset` must be an integer >= 1 or None, got True"),
        (lambda: EvalOptions(model_kwargs=[1]), TypeError, "`model_kwargs` must be a dict"),
        (lambda: EvalOptions(download="yes"), TypeError, "`download` must be True or False"),
        (
            lambda: StabilityConfig(max_shift=-1),
            ValueError,
            r"`StabilityConfig`: `max_shift` must be an integer >= 0, got -1\.",
        ),
        (lambda: StabilityConfig(pad_mode="reflection"), ValueError, "Did you mean 'reflect'"),
        (lambda: EquivarianceConfig(layers="conv1"), TypeError, r"use \['conv1'\]"),
        (lambda: EquivarianceConfig(distance="cos"), ValueError, "Did you mean 'cosine'"),
        (
            lambda: CorruptionConfig(severities=(0, 6)),
            ValueError,
            r"`severities` must be a non-empty list of integers in 1\.\.5",
        ),
        (lambda: PerturbationConfig(preset="cifar10"), ValueError, "Did you mean 'cifar'"),
        (lambda: PerturbationConfig(step=0), ValueError, "`step` must be an integer >= 1"),
        (lambda: ConsistencyConfig(passes=0), ValueError, "`passes` must be an integer >= 1"),
    ],
)
def test_bad_values_are_refused_in_one_wording(build, error, match):
    with pytest.raises(error, match=match):
        build()
