"""Study C spectral networks: exact published parameter counts, shapes, context input, determinism."""

from __future__ import annotations

import pytest
import torch

from astromodal.errors import BadValueError
from astromodal.models import build_model, count_parameters, get_model, list_models
from astromodal.models.spectra1d import (
    CNN2DXP,
    PUBLISHED_PARAMETER_COUNTS,
    ContextBranch,
    ConvStack1d,
    ScaledSelfAttention1d,
)

NAMES = sorted(PUBLISHED_PARAMETER_COUNTS)
CONTEXT_MODELS = {"cnn_attention", "cnn_gru", "cnn_lstm", "fcn1d", "stellarnet"}


def _batch(model, n: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    batch = {"spectrum": torch.randn(n, model.n_samples, generator=g)}
    if "context" in model.inputs:
        batch["context"] = torch.randn(n, 2, generator=g)
    return batch


def _build(name: str, length: int = 343, n_outputs: int = 1):
    torch.manual_seed(0)
    return build_model(name, input_shape=(length,), n_outputs=n_outputs)


def test_published_counts_table_is_the_study():
    assert len(PUBLISHED_PARAMETER_COUNTS) == 10
    assert (
        PUBLISHED_PARAMETER_COUNTS["fcn1d"] == 5_658_881 and PUBLISHED_PARAMETER_COUNTS["wide_ann"] == 1_036
    )


@pytest.mark.parametrize("name", NAMES)
def test_registered_for_study_c(name):
    spec = get_model(name)
    assert (spec.family, spec.modality, spec.study) == ("neural", "spectrum", "C")
    assert spec.tasks == ("classification", "regression")
    assert name in {s.name for s in list_models(study="C", modality="spectrum")}


@pytest.mark.parametrize("name", NAMES)
def test_parameter_count_is_published(name):
    assert count_parameters(_build(name)) == PUBLISHED_PARAMETER_COUNTS[name]


@pytest.mark.parametrize("name", NAMES)
def test_every_parameter_is_used(name):
    """A parameter outside the graph would inflate the count without being part of the model."""
    model = _build(name)
    model(**_batch(model)).sum().backward()
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert unused == []


@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("length", [343, 200, 500])
@pytest.mark.parametrize("name", NAMES)
def test_forward_shape(name, length, n_outputs):
    model = _build(name, length, n_outputs).eval()
    with torch.no_grad():
        out = model(**_batch(model, n=3))
    assert out.shape == (3, n_outputs)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize(
    ("name", "layer", "length", "in_features"),
    [
        ("cnn1d", "head.0.0", 200, 32 * 50),  # 200 -> 100 -> 50
        ("cnn1d", "head.0.0", 500, 32 * 125),
        ("cnn_attention", "spectrum_head.0", 500, 64 * 125),
        ("fcn1d", "head.0.0", 200, 128 * 200 + 32),
        ("starnet", "head.0.0", 500, 16 * 248),  # 500 -> 498 -> 496 -> 248
        ("starnet", "head.0.0", 200, 16 * 98),  # 200 -> 198 -> 196 -> 98
        ("stellarnet", "spectrum_head.0", 500, 256 * 62),  # 500 -> 250 -> 125 -> 62
        ("stellarnet", "spectrum_head.0", 343, 10_752),
        ("cnn2d_xp", "head.0.0", 200, 32 * 3 * 3),  # 15x15 -> 7 -> 3
        ("cnn2d_xp", "head.0.0", 500, 32 * 5 * 5),  # 23x23 -> 11 -> 5
        ("deep_ann", "net.0.0", 200, 200),
    ],
)
def test_flatten_size_follows_input_length(name, layer, length, in_features):
    model = _build(name, length)
    assert model.get_submodule(layer).in_features == in_features


def test_conv_stack_output_length():
    assert ConvStack1d((1, 16, 32)).output_length(343) == 85
    assert ConvStack1d((1, 4, 16), pool=(False, True), padding=0).output_length(343) == 169
    assert ConvStack1d((1, 16, 32, 64, 128), pool=(False,) * 4).output_length(343) == 343


def test_cnn2d_pads_to_next_square_and_fills_rows():
    model = CNN2DXP((343,))
    assert model.side == 19
    spectrum = torch.arange(1, 344, dtype=torch.float32).unsqueeze(0)
    image = model.to_image(spectrum)
    assert image.shape == (1, 1, 19, 19)
    assert image[0, 0, 0, :3].tolist() == [1.0, 2.0, 3.0]
    assert image[0, 0, 1, 0].item() == 20.0  # second row starts at sample 20
    assert image[0, 0, 18, 0].item() == 343.0  # the last sample opens the last row (18 x 19 = 342)
    assert (image.flatten()[343:] == 0).all() and image.flatten()[343:].numel() == 18
    assert CNN2DXP((361,)).side == 19 and CNN2DXP((362,)).side == 20


@pytest.mark.parametrize("name", NAMES)
def test_inputs_declare_context(name):
    expected = ("spectrum", "context") if name in CONTEXT_MODELS else ("spectrum",)
    assert get_model(name).factory.inputs == expected


@pytest.mark.parametrize("name", sorted(CONTEXT_MODELS))
def test_context_changes_the_prediction(name):
    model = _build(name).eval()
    batch = _batch(model)
    with torch.no_grad():
        base = model(**batch)
        other = model(spectrum=batch["spectrum"], context=batch["context"] * 5 + 1)
    assert not torch.allclose(base, other)


@pytest.mark.parametrize("name", sorted(CONTEXT_MODELS))
def test_context_is_required_and_checked(name):
    model = _build(name)
    batch = _batch(model)
    with pytest.raises(BadValueError, match="context"):
        model(spectrum=batch["spectrum"])
    with pytest.raises(BadValueError, match=r"\(N, 2\)"):
        model(spectrum=batch["spectrum"], context=torch.zeros(2, 3))


@pytest.mark.parametrize("name", sorted(set(NAMES) - CONTEXT_MODELS))
def test_models_without_context_ignore_it(name):
    model = _build(name).eval()
    spectrum = _batch(model)["spectrum"]
    with torch.no_grad():
        assert torch.equal(model(spectrum=spectrum), model(spectrum=spectrum, context=torch.randn(2, 2)))


def test_context_branch_sizes():
    assert sum(p.numel() for p in ContextBranch(64, 32).parameters()) == (2 * 64 + 64) + (64 * 32 + 32)
    assert sum(p.numel() for p in ContextBranch(16, 32, layer_norm=True).parameters()) == 48 + 32 + 544
    assert ContextBranch()(torch.zeros(5, 2)).shape == (5, 32)


def test_attention_block_starts_as_identity():
    torch.manual_seed(0)
    block = ScaledSelfAttention1d(4, heads=2)
    x = torch.randn(3, 4, 50)
    assert torch.equal(block(x), x)
    with torch.no_grad():
        block.scale.fill_(1.0)
    assert not torch.allclose(block(x), x)
    # attention is along the wavelength axis: each star is processed on its own
    assert torch.allclose(block(x)[:1], block(x[:1]), atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_forward_is_deterministic(name):
    model = _build(name).eval()
    batch = _batch(model)
    with torch.no_grad():
        assert torch.equal(model(**batch), model(**batch))
    # the predictions of one star do not depend on the other stars of the batch
    with torch.no_grad():
        single = model(**{k: v[:1] for k, v in batch.items()})
        assert torch.allclose(model(**batch)[:1], single, atol=1e-5)


@pytest.mark.parametrize(
    ("name", "length"), [("starnet", 5), ("cnn1d", 3), ("stellarnet", 7), ("cnn2d_xp", 9)]
)
def test_too_short_spectrum_is_an_error(name, length):
    with pytest.raises(BadValueError, match=f"{length} samples"):
        build_model(name, input_shape=(length,))


def test_bad_shapes_are_errors():
    model = _build("cnn1d")
    with pytest.raises(BadValueError, match=r"\(N, 343\)"):
        model(spectrum=torch.zeros(2, 200))
    with pytest.raises(BadValueError, match=r"\(N, 343\)"):
        model(spectrum=torch.zeros(2, 1, 343))
    with pytest.raises(BadValueError, match="input_shape"):
        build_model("cnn1d", input_shape=(1, 343))
    with pytest.raises(BadValueError, match="n_outputs"):
        build_model("wide_ann", input_shape=(343,), n_outputs=0)


def test_deep_and_wide_options():
    assert count_parameters(build_model("deep_ann", input_shape=(10,), depth=1)) == 110 + 11
    assert count_parameters(build_model("wide_ann", input_shape=(10,), width=5)) == 55 + 6
