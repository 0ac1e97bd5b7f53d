"""The fusion models: shapes, per-head outputs, parameter counts by hand, option errors."""

from __future__ import annotations

import pytest
import torch

from astromodal.errors import ConfigError
from astromodal.models.registry import build_model, count_parameters, get_model

SHAPES = {"gri": (3, 16, 16), "urz": (3, 16, 16), "astrometry": (3,), "spectrum": (200,)}


def _batch(n: int = 4, keys=("gri", "urz", "astrometry")) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {k: torch.randn(n, *SHAPES[k]) for k in keys}


def test_multi_input_net_gives_one_tensor_per_head():
    net = build_model("multi_input_net", input_shapes=SHAPES, inputs=["gri", "urz", "astrometry"],
                      n_outputs={"class": 3, "radius": 2})
    out = net.eval()(**_batch())
    assert set(out) == {"class", "radius"}
    assert out["class"].shape == (4, 3) and out["radius"].shape == (4, 2)
    assert net.inputs == ("gri", "urz", "astrometry")


def test_multi_input_net_single_head_is_a_tensor():
    net = build_model("multi_input_net", input_shapes=SHAPES, inputs=["gri", "spectrum"], n_outputs=5)
    out = net.eval()(**_batch(keys=("gri", "spectrum")))
    assert isinstance(out, torch.Tensor) and out.shape == (4, 5)


def test_multi_input_net_parameter_count_by_hand():
    # gri encoder, channels (4, 8): conv 9*3*4 + bn 2*4, conv 9*4*8 + bn 2*8 = 108 + 8 + 288 + 16 = 420
    # astrometry: Linear(3, 10) = 40; trunk Linear(8 + 10, 10) = 190; heads Linear(10, 3) = 33, Linear(10, 2) = 22
    net = build_model("multi_input_net", input_shapes=SHAPES, inputs=["gri", "astrometry"], channels=[4, 8],
                      hidden=10, n_outputs={"class": 3, "radius": 2})
    assert count_parameters(net) == 420 + 40 + 190 + 33 + 22


def test_contrastive_pair_returns_two_embeddings():
    net = build_model("contrastive_pair", input_shapes=SHAPES, inputs=["gri", "spectrum"], embed_dim=7)
    out = net.eval()(**_batch(keys=("gri", "spectrum")))
    assert set(out) == {"gri", "spectrum"} and out["gri"].shape == (4, 7) and out["spectrum"].shape == (4, 7)


@pytest.mark.parametrize("options, text", [
    ({}, "option 'inputs'"),
    ({"inputs": ["gri", "nope"]}, "no shape for input(s) ['nope']"),
    ({"inputs": ["gri"], "channels": [0]}, "must be positive"),
])
def test_fusion_option_errors_name_the_option(options, text):
    with pytest.raises(ConfigError, match=None) as exc:
        build_model("multi_input_net", input_shapes=SHAPES, n_outputs=2, **options)
    assert text in str(exc.value)


def test_contrastive_pair_needs_exactly_two_inputs():
    with pytest.raises(ConfigError, match="exactly 2 inputs"):
        build_model("contrastive_pair", input_shapes=SHAPES, inputs=["gri", "urz", "astrometry"])


def test_fusion_models_declare_their_inputs_from_options():
    spec = get_model("multi_input_net")
    assert spec.declared_inputs({"inputs": ["gri", "astrometry"]}) == ("gri", "astrometry")
