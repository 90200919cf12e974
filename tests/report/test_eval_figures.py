"""The evaluation figures draw what they are given."""

import numpy as np

from antialias.report.eval_figures import accuracy_vs_consistency, feature_distance_heatmaps, stability_curves


def test_heatmaps_one_panel_per_layer_with_shared_scale():
    maps = {"baseline": np.random.default_rng(0).random((3, 4, 4)), "bin5": np.zeros((3, 4, 4))}
    fig = feature_distance_heatmaps(maps, {"baseline": ["a", "b", "c"], "bin5": ["a", "b", "c"]})
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 6
    np.testing.assert_array_equal(images[3].get_array(), maps["bin5"][0])
    assert {im.get_clim() for im in images} == {(0.0, float(maps["baseline"].max()))}


def test_stability_and_headline_plots_carry_the_numbers():
    curves = {"m": {"shifts": [0, 1, 2], "mean_prob_correct": [0.9, 0.8, 0.85], "accuracy": [1.0, 0.5, 1.0]}}
    fig = stability_curves(curves)
    np.testing.assert_allclose(fig.axes[1].lines[0].get_ydata(), [100, 50, 100])
    point = {"value": 0.9, "low": 0.85, "high": 0.95}
    fig = accuracy_vs_consistency({"bin5": {"accuracy": point, "consistency": point}})
    x, y = fig.axes[0].lines[0].get_data()
    assert (float(x[0]), float(y[0])) == (90.0, 90.0)


def test_corruption_heatmap_shows_each_error():
    p = {"value": 0.25, "low": 0.2, "high": 0.3}
    result = {"corruptions": ["fog", "contrast"], "severities": [1, 2],
              "errors": {"fog": {"1": p, "2": {**p, "value": 0.5}}, "contrast": {"1": p, "2": p}},
              "clean_error": {"value": 0.1}, "unnormalised_mce": None}
    from antialias.report.eval_figures import corruption_errors

    fig = corruption_errors(result)
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), [[25, 50], [25, 25]])


def test_perturbation_bars_carry_flip_probabilities():
    from antialias.report.eval_figures import perturbation_flips

    fp = {"translate": {"value": 0.1, "low": 0.05, "high": 0.2}, "rotate": {"value": 0.3, "low": 0.2, "high": 0.4}}
    fig = perturbation_flips(
        {"perturbations": ["translate", "rotate"], "flip_probability": fp, "unnormalised_mfr": None}
    )
    assert [round(b.get_height(), 6) for b in fig.axes[0].patches] == [10.0, 30.0]
