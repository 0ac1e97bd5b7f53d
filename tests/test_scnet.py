"""SCNet / MMSCNet of study B (MESCR): parameter counts by hand, shapes, the Table 2 numeric variants,
training through the estimator, the CLI count and one-line config errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from astromodal.errors import ConfigError
from astromodal.models.registry import build_model, count_parameters, get_model


def conv(cin: int, cout: int) -> int:
    """BasicConv: 3 x 3 convolution without bias + BatchNorm (scale and shift)."""
    return 3 * 3 * cin * cout + 2 * cout


def cbam(c: int) -> int:
    """Shared 1 x 1 MLP c -> c // 16 -> c without bias, + the 7 x 7 spatial conv 2 -> 1 with a bias."""
    return c * (c // 16) + (c // 16) * c + (2 * 7 * 7 + 1)


def linear(a: int, b: int) -> int:
    return a * b + b


BRANCH = conv(3, 64) + cbam(64) + 2 * conv(64, 64) + conv(64, 128) + 2 * conv(128, 128)
STAGE = (cbam(256) + 3 * conv(256, 256) + conv(256, 512) + 2 * conv(512, 512) + conv(512, 1024)
         + conv(1024, 1024) + cbam(1024) + conv(1024, 1024))
FLAT = 1024 * 4 * 4  # 64 -> 32 -> 16 -> 8 -> 4 through the four stride-2 convolutions
PROJECTION = linear(FLAT, 1024) + linear(1024, 512)
NUMERIC = linear(2, 64) + linear(64, 32)
FUSION = linear(512 + 32, 256)
HEADS = linear(256, 5) + linear(256, 2)  # class logits (5 classes A F G K M), radius (mean, raw variance)
SHAPES64 = {"gri": (3, 64, 64), "urz": (3, 64, 64), "astrometry": (2,)}
S16 = {"gri": (3, 16, 16), "urz": (3, 16, 16), "astrometry": (2,)}
SMALL = {"width": 0.125, "projection": [16], "fusion": [8]}  # CPU-cheap options for behaviour tests


def mmscnet(shapes=None, n_outputs=None, **options):
    shapes = shapes or SHAPES64
    return build_model("mmscnet", input_shape=shapes["gri"], input_shapes=shapes,
                       n_outputs=n_outputs or {"class": 5, "radius": 2}, **options)


def batch(n: int, side: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"gri": torch.rand(n, 3, side, side, generator=g), "urz": torch.rand(n, 3, side, side, generator=g),
            "astrometry": torch.randn(n, 2, generator=g)}


def test_hand_counts_match_the_written_numbers():
    assert FLAT == 16_384
    assert BRANCH == 1856 + 611 + 73_984 + 73_984 + 295_424 == 445_859
    assert STAGE == 31_410_886
    assert PROJECTION == 17_303_040 and NUMERIC == 2_272 and FUSION == 139_520 and HEADS == 1_799


def test_mmscnet_parameter_count_at_width_one_and_64_px():
    with torch.device("meta"):
        m = mmscnet()
    assert m.n_flat == FLAT
    assert count_parameters(m.branches[0]) == BRANCH
    assert count_parameters(m.stage) == STAGE
    assert count_parameters(m.projection) == PROJECTION
    assert count_parameters(m.numeric) == NUMERIC
    assert count_parameters(m.fusion) == FUSION
    assert count_parameters(m) == 2 * BRANCH + STAGE + PROJECTION + NUMERIC + FUSION + HEADS == 49_749_235


def test_numeric_variants_change_only_the_numeric_and_fusion_sizes():
    with torch.device("meta"):
        full = count_parameters(mmscnet())
        parallax = count_parameters(mmscnet(numeric="parallax"))
        pm = count_parameters(mmscnet(numeric="pm"))
        none = count_parameters(mmscnet(numeric="none"))
    assert parallax == pm == full - 64  # Linear(1, 64) instead of Linear(2, 64)
    assert none == full - NUMERIC - 32 * 256  # no numeric branch; the fusion layer reads 512, not 544


def test_scnet_single_branch_parameter_count():
    with torch.device("meta"):
        s = build_model("scnet", input_shape=(3, 64, 64), n_outputs={"class": 5, "radius": 2})
    stage = cbam(128) + conv(128, 256) + 2 * conv(256, 256) + STAGE - cbam(256) - 3 * conv(256, 256)
    assert count_parameters(s.stage) == stage == 31_109_830
    assert count_parameters(s) == BRANCH + stage + PROJECTION + linear(512, 256) + HEADS == 48_991_856


def test_width_multiplier_scales_channels_and_keeps_cbam_hidden_positive():
    m = mmscnet(width=0.125)
    assert m.n_flat == 128 * 4 * 4
    first_cbam = m.branches[0][1]
    assert first_cbam.mlp[0].out_channels == 1  # 8 channels // 16 = 0 -> at least 1
    tiny = mmscnet(width=0.001, projection=[4], fusion=[4])
    assert tiny.n_flat == 1 * 4 * 4  # every channel count at least 1


@pytest.mark.parametrize("numeric", ["both", "parallax", "pm", "none"])
@pytest.mark.parametrize("side, flat", [(32, 128 * 2 * 2), (8, 128 * 1 * 1)])
def test_forward_shapes_for_every_variant_and_size(numeric, side, flat):
    shapes = {"gri": (3, side, side), "urz": (3, side, side), "astrometry": (2,)}
    m = mmscnet(shapes, numeric=numeric, **SMALL).eval()
    assert m.n_flat == flat  # 32 -> 16 -> 8 -> 4 -> 2; 8 -> 4 -> 2 -> 1 -> 1 (never below 1 px)
    out = m(**batch(3, side))
    assert out["class"].shape == (3, 5) and out["radius"].shape == (3, 2)
    single = mmscnet(shapes, n_outputs=4, numeric=numeric, **SMALL).eval()
    assert single(**batch(3, side)).shape == (3, 4)


def test_numeric_variants_read_their_column_and_none_ignores_the_input():
    torch.manual_seed(0)
    x = batch(4, 16)
    changed_pm = {**x, "astrometry": x["astrometry"].clone()}
    changed_pm["astrometry"][:, 1] += 3.0
    changed_parallax = {**x, "astrometry": x["astrometry"].clone()}
    changed_parallax["astrometry"][:, 0] += 3.0
    with torch.no_grad():
        par = mmscnet(S16, numeric="parallax", **SMALL).eval()
        assert torch.equal(par(**x)["class"], par(**changed_pm)["class"])  # pm (column 1) unused
        assert not torch.equal(par(**x)["class"], par(**changed_parallax)["class"])
        pm = mmscnet(S16, numeric="pm", **SMALL).eval()
        assert torch.equal(pm(**x)["class"], pm(**changed_parallax)["class"])
        assert not torch.equal(pm(**x)["class"], pm(**changed_pm)["class"])
        none = mmscnet({"gri": (3, 16, 16), "urz": (3, 16, 16)}, numeric="none", **SMALL).eval()
        assert torch.equal(none(**x)["radius"], none(**changed_pm)["radius"])
        assert torch.equal(none(**x)["radius"], none(**{k: x[k] for k in ("gri", "urz")})["radius"])  # absent


def test_declared_inputs_follow_the_options():
    spec = get_model("mmscnet")
    assert spec.declared_inputs({}) == ("gri", "urz", "astrometry")
    assert spec.declared_inputs({"branches": ["a", "b"], "numeric_input": "gaia"}) == ("a", "b", "gaia")
    assert spec.declared_inputs({"numeric": "none"}) == ("gri", "urz")
    assert get_model("scnet").declared_inputs({}) == ("image",)
    assert get_model("scnet").declared_inputs({"inputs": ["gri"]}) == ("gri",)


@pytest.mark.parametrize("options, shapes, message", [
    ({"numeric": "distance"}, None, "option 'numeric' must be one of both, parallax, pm, none"),
    ({}, {"gri": (3, 64, 64), "urz": (3, 64, 64)}, "no input ['astrometry'] in the data"),
    ({}, {**SHAPES64, "urz": (5, 64, 64)}, "input 'urz' must have 3 channels"),
    ({}, {**SHAPES64, "astrometry": (3,)}, "must hold exactly 2 columns (parallax, pm)"),
    ({}, {**SHAPES64, "urz": (3, 32, 32)}, "must have one size"),
    ({"branches": ["gri"]}, None, "option 'branches' must be a list of 2 different input names"),
    ({"width": 0}, None, "option 'width' must be > 0"),
    ({"dropout": 1.5}, None, "option 'dropout' must be in [0, 1)"),
    ({"projection": [1024, -1]}, None, "option 'projection' must be a list of positive integers"),
])
def test_bad_config_is_one_config_error_line(options, shapes, message):
    with torch.device("meta"), pytest.raises(ConfigError) as exc:
        mmscnet(shapes, **options)
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_scnet_wrong_channels_is_one_line():
    with pytest.raises(ConfigError, match="input 'image' must have 3 channels"):
        build_model("scnet", input_shape=(1, 28, 28), n_outputs=3)


def _tiny_data(n: int, side: int, seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    cls = rng.integers(0, 3, n)
    x = {"gri": rng.random((n, 3, side, side), dtype=np.float32) * 0.2,
         "urz": rng.random((n, 3, side, side), dtype=np.float32) * 0.2,
         "astrometry": rng.normal(size=(n, 2)).astype(np.float32)}
    x["gri"][:, cls % 3] += 0.5  # the class brightens one channel
    x["gri"][np.arange(n), cls] += 0.5
    radius = (1.0 + cls + 0.5 * x["astrometry"][:, 0]).astype(np.float64)
    return x, {"class": np.array(["AFG"[c] for c in cls]), "radius": radius}


def test_mmscnet_trains_through_the_estimator_and_the_loss_decreases(tmp_path):
    from astromodal.training.estimator import TorchEstimator, load_estimator, make_estimator

    x, y = _tiny_data(96, 16)
    est = make_estimator(
        "mmscnet", {"width": 0.125, "projection": [64, 32], "fusion": [32], "numeric": "both"},
        trainer={"max_epochs": 6, "batch_size": 32, "optimizer": "sgd", "lr": 0.01, "weight_decay": 1e-5,
                 "patience": None, "progress": False, "device": "cpu", "val_fraction": 0.0, "seed": 3407},
        heads={"class": {"kind": "categorical"}, "radius": {"kind": "gaussian"}}, standardise=["astrometry"])
    assert isinstance(est, TorchEstimator)
    est.fit(x, y)
    losses = [h["train_loss"] for h in est.history]
    assert losses[-1] < losses[0]
    pred = est.predict_heads(x)
    assert pred["class"].proba.shape == (96, 3) and np.all(pred["radius"].var > 0)
    est.save(tmp_path / "m")
    again = load_estimator(tmp_path / "m")
    np.testing.assert_allclose(again.predict_heads(x)["radius"].mean, pred["radius"].mean, rtol=1e-5)


def test_mmscnet_image_only_trains_without_the_numeric_input():
    from astromodal.training.estimator import make_estimator

    x, y = _tiny_data(48, 8)
    est = make_estimator("mmscnet", {"width": 0.125, "projection": [16], "fusion": [16], "numeric": "none"},
                         trainer={"max_epochs": 1, "batch_size": 16, "progress": False, "device": "cpu",
                                  "val_fraction": 0.0},
                         heads={"class": {"kind": "categorical"}, "radius": {"kind": "gaussian"}})
    est.fit({"gri": x["gri"], "urz": x["urz"]}, y)
    assert est.predict_heads({"gri": x["gri"], "urz": x["urz"]})["class"].proba.shape == (48, 3)


def test_models_command_prints_both_parameter_counts():
    from astromodal.cli import app

    result = CliRunner().invoke(app, ["models", "--study", "B", "--image-size", "64", "--classes", "5"])
    assert result.exit_code == 0, result.output
    one_head = 2 * BRANCH + STAGE + PROJECTION + NUMERIC + FUSION + linear(256, 5)
    lines = {ln.split()[0]: ln for ln in result.output.splitlines() if ln.split()}
    assert f"{one_head:,}" in lines["mmscnet"]  # 49,748,721
    scnet_stage = STAGE - (cbam(256) - cbam(128)) - (conv(256, 256) - conv(128, 256))
    assert f"{BRANCH + scnet_stage + PROJECTION + linear(512, 256) + linear(256, 5):,}" in lines["scnet"]
