"""Study D fusion strategies (early, intermediate, late, cross-attention): shapes, parameter counts by hand,
late-fusion weights, cross-modal attention, registered encoders, option errors, estimator fits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from astromodal.errors import ConfigError
from astromodal.models.fusion import CrossAttentionFusion, EarlyFusion, LateFusion
from astromodal.models.registry import build_model, count_parameters, get_model
from astromodal.training.estimator import load_estimator, make_estimator
from astromodal.training.trainer import TrainerConfig

SHAPES = {"image": (5, 16, 16), "spectrum": (300,), "cols": (3,)}
PAIR = ["image", "spectrum"]
FUSIONS = ("early_fusion", "intermediate_fusion", "late_fusion", "cross_attention_fusion")
SMALL = {"channels": [4, 8], "hidden": 10}
HEADS = {"class": 3, "sfr": 2}


def _batch(n: int = 4, keys=("image", "spectrum", "cols"), seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(n, *SHAPES[k], generator=g) for k in keys}


def _build(name: str, inputs=PAIR, n_outputs=HEADS, **options):
    return build_model(name, input_shapes=SHAPES, inputs=inputs, n_outputs=n_outputs, **{**SMALL, **options})


# ---------------------------------------------------------------------- shapes
@pytest.mark.parametrize("name", FUSIONS)
@pytest.mark.parametrize("inputs", [PAIR, ["image", "spectrum", "cols"]])
def test_outputs_one_tensor_per_head_and_one_tensor_for_an_int(name, inputs):
    x = _batch(keys=inputs)
    out = _build(name, inputs).eval()(**x)
    assert set(out) == {"class", "sfr"} and out["class"].shape == (4, 3) and out["sfr"].shape == (4, 2)
    single = _build(name, inputs, n_outputs=2).eval()(**x)
    assert isinstance(single, torch.Tensor) and single.shape == (4, 2)
    spec = get_model(name)
    assert spec.study == "D" and spec.modality == "multimodal" and set(spec.tasks) == {"classification", "regression"}


# ---------------------------------------------------------------------- parameter counts by hand
def test_early_fusion_parameter_count_by_hand():
    # spectrum (300,) -> 2 extra 16 x 16 channels: Linear(300, 2 * 256) = 300 * 512 + 512 = 154,112
    # shared trunk on 5 + 2 = 7 channels, widths (4, 8): 9*7*4 + 2*4 = 260, 9*4*8 + 2*8 = 304 -> 564
    # block Linear(8, 10) = 90; heads Linear(10, 3) = 33, Linear(10, 2) = 22
    net = _build("early_fusion", extra_channels=2)
    assert count_parameters(net) == 154_112 + 564 + 90 + 33 + 22 == 154_821
    assert net.joined_shape == (7, 16, 16)
    x = _batch(keys=PAIR)
    joined = net.join(**x)
    assert joined.shape == (4, 7, 16, 16) and torch.equal(joined[:, :5], x["image"])
    # the two extra channels are the learned spectral image W s + b
    spectral = net.maps["spectrum"](x["spectrum"]).view(4, 2, 16, 16)
    assert torch.allclose(joined[:, 5:], spectral)


def test_early_fusion_of_one_dimensional_inputs_stacks_or_concatenates():
    shapes = {"flux": (300,), "err": (300,), "cols": (3,)}
    stacked = build_model("early_fusion", input_shapes=shapes, inputs=["flux", "err"], n_outputs=1, **SMALL)
    assert stacked.joined_shape == (2, 300)  # equal-length sequences -> channels of one sequence
    # trunk 1-D widths (4, 8) on 2 channels: 5*2*4 + 8 = 48, 5*4*8 + 16 = 176; block 90; head 11
    assert count_parameters(stacked) == 48 + 176 + 90 + 11
    joined = build_model("early_fusion", input_shapes=shapes, inputs=["flux", "cols"], n_outputs=1, **SMALL)
    assert joined.joined_shape == (303,)  # otherwise one flattened vector
    x = {"flux": torch.randn(4, 300), "err": torch.rand(4, 300), "cols": torch.randn(4, 3)}
    assert stacked.eval()(**x).shape == (4, 1) and joined.eval()(**x).shape == (4, 1)


def test_late_fusion_parameter_count_by_hand():
    # image encoder (4, 8) on 5 bands: 9*5*4 + 8 = 188, 9*4*8 + 16 = 304 -> 492
    # spectrum encoder (1-D, kernel 5, 1 channel): 5*1*4 + 8 = 28, 5*4*8 + 16 = 176 -> 204
    # per input: block Linear(8, 10) = 90 and heads 33 + 22 = 55 -> 2 * 145 = 290
    # weights: 2 heads x 2 inputs = 4
    assert count_parameters(_build("late_fusion")) == 492 + 204 + 290 + 4 == 990


def test_intermediate_fusion_equals_multi_input_net_and_counts_by_hand():
    # encoders 492 + 204, block Linear(8 + 8, 10) = 170, heads 55
    a, b = _build("intermediate_fusion"), _build("multi_input_net")
    assert count_parameters(a) == count_parameters(b) == 492 + 204 + 170 + 55 == 921
    assert list(a.state_dict()) == list(b.state_dict())


def test_cross_attention_parameter_count_by_hand():
    # encoders 492 + 204; tokens: image (16 / 4)^2 = 16, spectrum 300 // 4 = 75, projections Linear(8, 8) = 72 x 2
    # positions (16 + 75) * 8 = 728; two MultiheadAttention(8): 4 * 64 + 4 * 8 = 288 each; two LayerNorm(8): 16 each
    # block Linear(2 * 8, 10) = 170; heads 55
    net = _build("cross_attention_fusion", d_model=8, n_heads=2)
    assert net.n_tokens == {"image": 16, "spectrum": 75}
    assert count_parameters(net) == 696 + 144 + 728 + 576 + 32 + 170 + 55 == 2401


# ---------------------------------------------------------------------- late fusion weights
def test_late_fusion_weights_start_equal_sum_to_one_and_weight_the_outputs():
    net = _build("late_fusion", inputs=["image", "spectrum", "cols"]).eval()
    weights = net.modality_weights()
    assert set(weights) == {"class", "sfr"}
    for w in weights.values():
        assert list(w) == ["image", "spectrum", "cols"] and all(v == pytest.approx(1 / 3) for v in w.values())
    with torch.no_grad():
        net.weight_logits["sfr"].copy_(torch.tensor([math.log(6.0), math.log(3.0), 0.0]))  # -> 0.6, 0.3, 0.1
    w = net.modality_weights()["sfr"]
    assert sum(w.values()) == pytest.approx(1.0) and w["image"] == pytest.approx(0.6) and w["cols"] == pytest.approx(0.1)
    x = _batch()
    parts, out = net.per_input(**x), net(**x)
    expected = 0.6 * parts["image"]["sfr"] + 0.3 * parts["spectrum"]["sfr"] + 0.1 * parts["cols"]["sfr"]
    assert torch.allclose(out["sfr"], expected, atol=1e-6)
    assert torch.allclose(out["class"], sum(parts[k]["class"] for k in parts) / 3, atol=1e-6)
    single = _build("late_fusion", n_outputs=2)
    assert single.modality_weights() == {"out": {"image": 0.5, "spectrum": 0.5}}


# ---------------------------------------------------------------------- cross-attention mixes the modalities
def test_cross_attention_image_branch_depends_on_the_spectrum_of_its_own_object_only():
    net = _build("cross_attention_fusion", d_model=8, n_heads=2).eval()
    x = _batch(keys=PAIR)
    x["spectrum"].requires_grad_(True)
    image_branch, _ = net.branches(**x)
    image_branch[0].sum().backward()
    grad = x["spectrum"].grad
    assert grad[0].abs().sum() > 0  # the image tokens attended to the spectrum tokens
    assert torch.count_nonzero(grad[1:]) == 0  # no leak across objects (eval: running BatchNorm statistics)
    # and changing the spectrum changes the image-token output
    other = {**x, "spectrum": x["spectrum"].detach() + 1.0}
    assert not torch.allclose(net.branches(**other)[0], image_branch.detach())


# ---------------------------------------------------------------------- registered encoders
def test_registered_one_and_two_dimensional_encoders_in_late_fusion():
    net = _build("late_fusion", encoders={"spectrum": "cnn1d", "image": "simple_cnn1"})
    assert type(net.encoders["spectrum"].net).__name__ == "CNN1D"
    assert type(net.encoders["image"].net).__name__ == "SimpleCNN1"
    cnn1d = count_parameters(build_model("cnn1d", input_shape=(300,), n_outputs=10))
    cnn2d = count_parameters(build_model("simple_cnn1", input_shape=(5, 16, 16), n_outputs=10))
    # each encoder gives hidden = 10 features: per input block Linear(10, 10) = 110, heads 55; weights 4
    assert count_parameters(net) == cnn1d + cnn2d + 2 * (110 + 55) + 4
    out = net.eval()(**_batch(keys=PAIR))
    assert out["class"].shape == (4, 3) and out["sfr"].shape == (4, 2)


@pytest.mark.parametrize("name", ["intermediate_fusion", "multi_input_net"])
def test_registered_encoders_in_intermediate_fusion_with_options(name):
    net = _build(name, encoders={"image": "simple_cnn1", "spectrum": "default"},
                 encoder_options={"image": {"mode": "native"}})
    assert type(net.encoders["image"].net).__name__ == "SimpleCNN1" and type(net.encoders["spectrum"]).__name__ == "_Encoder"
    assert net.eval()(**_batch(keys=PAIR))["sfr"].shape == (4, 2)


def test_early_fusion_takes_a_registered_trunk_on_the_joined_image():
    net = _build("early_fusion", trunk="simple_cnn1")
    assert net.trunk.net.input_shape == (6, 16, 16)
    assert net.eval()(**_batch(keys=PAIR))["class"].shape == (4, 3)


def test_cross_attention_registered_encoder_is_one_token():
    net = _build("cross_attention_fusion", d_model=8, n_heads=2, encoders={"spectrum": "cnn1d"}).eval()
    assert net.n_tokens == {"image": 16, "spectrum": 1}
    x = _batch(keys=PAIR)
    x["spectrum"].requires_grad_(True)
    net.branches(**x)[0][0].sum().backward()
    assert x["spectrum"].grad[0].abs().sum() > 0


# ---------------------------------------------------------------------- bad options: one clear line each
@pytest.mark.parametrize("name", FUSIONS)
def test_one_input_is_refused(name):
    with pytest.raises(ConfigError) as exc:
        _build(name, inputs=["image"])
    assert str(exc.value) == (f"{name}: option 'inputs' needs at least two inputs (one per modality), "
                              "got ['image']")


@pytest.mark.parametrize("inputs, missing", [(["spectrum", "cols"], "image"), (["image", "cols"], "sequence")])
def test_cross_attention_needs_an_image_and_a_sequence(inputs, missing):
    with pytest.raises(ConfigError, match="cross_attention_fusion: option 'inputs' needs an image input") as exc:
        _build("cross_attention_fusion", inputs=inputs)
    assert "(C, H, W)" in str(exc.value) and "(L,) with L > 64" in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("name", ["late_fusion", "intermediate_fusion", "cross_attention_fusion"])
def test_unknown_encoder_lists_the_valid_ones(name):
    with pytest.raises(ConfigError) as exc:
        _build(name, encoders={"spectrum": "nope"})
    text = str(exc.value)
    assert text.startswith(f"{name}: option 'encoders' for input 'spectrum': unknown model 'nope'; valid: default, ")
    assert "cnn1d" in text and "simple_cnn1" not in text  # only networks that fit a (300,) input


@pytest.mark.parametrize("encoders, text", [
    ({"spectrum": "simple_cnn1"}, "'simple_cnn1' has modality 'image', which does not fit per-object shape [300]"),
    ({"image": "cnn1d"}, "'cnn1d' has modality 'spectrum', which does not fit per-object shape [5, 16, 16]"),
    ({"image": "random_forest"}, "is a classical model"),
    ({"spectrum": "cnn_attention"}, "reads 2 inputs ['spectrum', 'context'], an encoder reads one"),
    ({"image": "scnet"}, "'scnet' cannot encode per-object shape [5, 16, 16]"),
    ({"redshift": "cnn1d"}, "option 'encoders' names input(s) ['redshift'] not in 'inputs'"),
])
def test_encoders_that_do_not_fit_are_refused(encoders, text):
    with pytest.raises(ConfigError) as exc:
        _build("late_fusion", encoders=encoders)
    assert str(exc.value).startswith("late_fusion: option 'encoders'") and text in str(exc.value)


def test_encoder_options_without_a_registered_encoder_or_unknown_are_refused():
    with pytest.raises(ConfigError, match="option 'encoder_options' given for input"):
        _build("late_fusion", encoder_options={"spectrum": {"depth": 2}})
    with pytest.raises(ConfigError, match="unknown option"):
        _build("late_fusion", encoders={"spectrum": "cnn1d"}, encoder_options={"spectrum": {"depth": 2}})


def test_other_options_are_checked():
    with pytest.raises(ConfigError, match="'d_model' and 'n_heads'"):
        _build("cross_attention_fusion", d_model=10, n_heads=4)
    with pytest.raises(ConfigError, match="option 'extra_channels'"):
        _build("early_fusion", extra_channels=0)
    with pytest.raises(ConfigError, match="image inputs must have one size"):
        build_model("early_fusion", input_shapes={**SHAPES, "small": (5, 8, 8)}, inputs=["image", "small"])
    with pytest.raises(ConfigError, match="leaves no token"):
        _build("cross_attention_fusion", channels=[4, 4, 4, 4, 4])  # 16 px / 2^5 = 0


# ---------------------------------------------------------------------- end to end through the estimator
FAST = TrainerConfig(max_epochs=2, batch_size=16, lr=1e-2, patience=None, progress=False, device="cpu",
                     val_fraction=0.0)


@pytest.mark.parametrize("name", FUSIONS)
def test_fit_and_predict_through_the_estimator(name, tmp_path):
    rng = np.random.default_rng(0)
    n = 32
    X = {"image": rng.normal(size=(n, 5, 8, 8)).astype(np.float32),
         "spectrum": rng.normal(size=(n, 128)).astype(np.float32)}
    y = X["spectrum"][:, :10].mean(axis=1) + X["image"].mean(axis=(1, 2, 3))
    options = {"inputs": PAIR, "channels": [4], "hidden": 8, "dropout": 0.0}
    if name == "cross_attention_fusion":
        options.update(d_model=8, n_heads=2)
    if name == "late_fusion":
        options["encoders"] = {"spectrum": "cnn1d"}
    est = make_estimator(name, options, trainer=FAST, task="regression", standardise=PAIR).fit(X, y)
    pred = est.predict(X)
    assert pred.shape == (n,) and np.isfinite(pred).all()
    est.save(tmp_path / "m")
    np.testing.assert_allclose(load_estimator(tmp_path / "m").predict(X), pred, rtol=1e-5, atol=1e-6)


def test_model_classes_are_exported():
    assert {get_model(n).factory for n in FUSIONS[:1] + FUSIONS[2:]} == {EarlyFusion, LateFusion, CrossAttentionFusion}
