"""Image models of study A: exact parameter counts, forward shapes, feature-map sizes, errors."""

from __future__ import annotations

import pytest
import torch

from astromodal.errors import BadValueError, ConfigError
from astromodal.models.registry import build_model, count_parameters, get_model, list_models

NAMES = ("simple_cnn1", "simple_cnn2", "lenet", "alexnet", "vgg16", "googlenet", "resnet18", "mobilenet_v2")


def _count(name: str, **kw) -> int:
    """Parameter count without allocating memory (meta device: shapes only)."""
    with torch.device("meta"):
        model = build_model(name, **kw)
    return count_parameters(model)


def _feature_map(model, x: torch.Tensor) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Shapes of the tensor entering and leaving ``model.features`` during ``model(image=x)``."""
    seen = {}

    def hook(module, args, output):
        seen["in"], seen["out"] = tuple(args[0].shape), tuple(output.shape)

    handle = model.features.register_forward_hook(hook)
    try:
        with torch.no_grad():
            model(image=x)
    finally:
        handle.remove()
    return seen["in"], seen["out"]


def test_all_registered_for_study_a():
    image_a = {s.name for s in list_models(modality="image", study="A")}
    assert set(NAMES) <= image_a
    for name in NAMES:
        spec = get_model(name)
        assert spec.family == "neural" and spec.tasks == ("classification",)
        assert spec.factory.inputs == ("image",)


# published torchvision counts (3 channels, 1000 classes), first-conv weights per input channel, head width
PUBLISHED = {
    "alexnet": (61_100_840, 64 * 11 * 11, 4096),  # conv1 64 x C x 11 x 11 (+64 bias); fc 4096 -> 1000
    "vgg16": (138_357_544, 64 * 3 * 3, 4096),  # conv1_1 64 x C x 3 x 3; fc 4096 -> 1000
    "googlenet": (6_624_904, 64 * 7 * 7, 1024),  # conv1 64 x C x 7 x 7 (no bias); fc 1024 -> 1000
    "resnet18": (11_689_512, 64 * 7 * 7, 512),  # conv1 64 x C x 7 x 7 (no bias); fc 512 -> 1000
    "mobilenet_v2": (3_504_872, 32 * 3 * 3, 1280),  # features[0] 32 x C x 3 x 3 (no bias); fc 1280 -> 1000
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
@pytest.mark.parametrize("channels,n_out", [(1, 3), (5, 7)])
def test_paper_mode_parameter_count_matches_torchvision(name, channels, n_out):
    published, stem_per_channel, head_in = PUBLISHED[name]
    expected = (
        published
        - stem_per_channel * (3 - channels)  # stem: 3 input channels -> C
        - (head_in * 1000 + 1000)  # drop the 1000-class head ...
        + (head_in * n_out + n_out)  # ... and add an n-class one
    )
    assert _count(name, input_shape=(channels, 28, 28), n_outputs=n_out, mode="paper") == expected


def test_paper_counts_written_out_for_one_channel_three_classes():
    # resnet18: 11,689,512 - 64*2*7*7 (6,272) - (512*1000+1000) + (512*3+3) = 11,171,779
    assert _count("resnet18", mode="paper") == 11_689_512 - 6_272 - 513_000 + 1_539 == 11_171_779
    # alexnet: 61,100,840 - 64*2*11*11 (15,488) - 4,097,000 + 12,291 = 57,000,643
    assert _count("alexnet", mode="paper") == 61_100_840 - 15_488 - 4_097_000 + 12_291 == 57_000_643
    # mobilenet_v2: 3,504,872 - 32*2*3*3 (576) - 1,281,000 + 3,843 = 2,227,139
    assert _count("mobilenet_v2", mode="paper") == 3_504_872 - 576 - 1_281_000 + 3_843 == 2_227_139


@pytest.mark.parametrize("mode", ["native", "paper"])
def test_lenet5_count_by_hand(mode):
    c1 = 6 * 1 * 5 * 5 + 6  # 156
    c3 = 16 * 6 * 5 * 5 + 16  # 2,416 (fully connected C3)
    c5 = 120 * 16 * 5 * 5 + 120  # 48,120
    f6 = 84 * 120 + 84  # 10,164
    out10 = 10 * 84 + 10  # 850
    assert c1 + c3 + c5 + f6 + out10 == 61_706
    assert _count("lenet", n_outputs=10, mode=mode) == 61_706
    assert _count("lenet", n_outputs=3, mode=mode) == 61_706 - out10 + (3 * 84 + 3) == 61_111
    # 3 bands: only C1 grows, by 6 * 2 * 25 weights
    assert _count("lenet", input_shape=(3, 28, 28), n_outputs=10, mode=mode) == 61_706 + 300


def test_simple_cnn_counts_by_hand():
    conv = (32 * 1 * 9 + 32) + (64 * 32 * 9 + 64)  # 320 + 18,496
    fc = (64 * 7 * 7 * 128 + 128) + (128 * 3 + 3)  # 401,536 + 387
    assert _count("simple_cnn1") == conv + fc == 420_739
    bn = 2 * (32 + 32 + 64 + 64)  # gamma and beta of four batch norms
    convs = 32 * 1 * 9 + 32 * 32 * 9 + 64 * 32 * 9 + 64 * 64 * 9  # no bias (batch norm follows)
    fc2 = (3136 * 256 + 256) + (256 * 3 + 3)
    assert _count("simple_cnn2") == bn + convs + fc2 == 869_027
    # paper mode is the same network
    assert _count("simple_cnn2", mode="paper") == 869_027


# feature-map shape leaving `features` for a (2, 1, 28, 28) batch in native mode: nothing vanishes
NATIVE_MAPS = {
    "simple_cnn1": (64, 7, 7),
    "simple_cnn2": (64, 7, 7),
    "lenet": (16, 5, 5),
    "alexnet": (256, 3, 3),
    "vgg16": (512, 3, 3),
    "googlenet": (1024, 7, 7),
    "resnet18": (512, 4, 4),
    "mobilenet_v2": (1280, 4, 4),
}


@pytest.mark.parametrize("name", NAMES)
def test_native_forward_shapes(name):
    torch.manual_seed(0)
    model = build_model(name, input_shape=(1, 28, 28), n_outputs=3, mode="native").eval()
    x = torch.randn(2, 1, 28, 28)
    seen_in, seen_out = _feature_map(model, x)
    assert seen_in == (2, 1, 28, 28)  # native mode never resamples
    assert seen_out == (2, *NATIVE_MAPS[name])
    with torch.no_grad():
        y = model(image=x)
    assert y.shape == (2, 3) and y.dtype == torch.float32 and torch.isfinite(y).all()


@pytest.mark.parametrize("name", ["lenet", "resnet18", "mobilenet_v2"])
def test_paper_forward_resamples(name):
    torch.manual_seed(0)
    model = build_model(name, input_shape=(1, 28, 28), n_outputs=3, mode="paper").eval()
    seen_in, seen_out = _feature_map(model, torch.rand(1, 1, 28, 28))
    size = 32 if name == "lenet" else 224
    assert seen_in == (1, 1, size, size)
    # the standard maps: LeNet 16 x 5 x 5 before C5; ResNet18 / MobileNetV2 7 x 7 (stride 32)
    assert seen_out[2:] == ((5, 5) if name == "lenet" else (7, 7))


def test_paper_resampling_is_bilinear_and_paper_size_option():
    model = build_model("lenet", mode="paper", paper_size=56).eval()
    seen_in, _ = _feature_map(model, torch.ones(1, 1, 28, 28))
    assert seen_in == (1, 1, 56, 56)
    # a constant image stays constant under bilinear resampling: C1 output is spatially uniform
    captured = {}
    model.features[0].register_forward_hook(lambda m, a, o: captured.setdefault("c1", o))
    with torch.no_grad():
        model(image=torch.full((1, 1, 28, 28), 0.7))
    c1 = captured["c1"][0]
    assert torch.allclose(c1, c1[:, :1, :1].expand_as(c1), atol=1e-6)


@pytest.mark.parametrize("name", ["simple_cnn2", "lenet", "resnet18", "mobilenet_v2", "alexnet"])
def test_multiband_inputs_and_other_output_counts(name):
    torch.manual_seed(1)
    model = build_model(name, input_shape=(5, 32, 32), n_outputs=1).eval()
    with torch.no_grad():
        y = model(image=torch.randn(3, 5, 32, 32))
    assert y.shape == (3, 1)


@pytest.mark.parametrize("name", ["resnet18", "vgg16", "googlenet", "alexnet", "mobilenet_v2"])
def test_adaptive_pools_accept_other_sizes(name):
    model = build_model(name, input_shape=(1, 28, 28), n_outputs=4).eval()
    with torch.no_grad():
        assert model(image=torch.randn(1, 1, 16, 16)).shape == (1, 4)
        assert model(image=torch.randn(1, 1, 40, 36)).shape == (1, 4)


def test_input_errors_name_the_problem():
    with pytest.raises(ConfigError, match="mode"):
        build_model("resnet18", mode="imagenet")
    with pytest.raises(ConfigError, match="input_shape"):
        build_model("vgg16", input_shape=(28, 28))
    with pytest.raises(ConfigError, match="n_outputs"):
        build_model("alexnet", n_outputs=0)
    with pytest.raises(ConfigError, match="at least 10"):
        build_model("lenet", input_shape=(1, 8, 8))
    model = build_model("resnet18", input_shape=(1, 28, 28))
    with pytest.raises(BadValueError, match=r"\(N, 1, H, W\)"):
        model(image=torch.zeros(2, 3, 28, 28))
    with pytest.raises(BadValueError, match="28 x 28"):
        build_model("simple_cnn1")(image=torch.zeros(2, 1, 32, 32))


def test_simple_cnn_learns_a_tiny_problem():
    """Two classes differing in where the light falls (top vs bottom half) are learnt in a few steps."""
    torch.manual_seed(0)
    x = torch.zeros(16, 1, 28, 28)
    y = torch.arange(16) % 2
    x[y == 0, :, :14] = 1.0
    x[y == 1, :, 14:] = 1.0
    x += 0.1 * torch.randn_like(x)
    model = build_model("simple_cnn1", n_outputs=2)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    first = loss_fn(model(image=x), y).item()
    for _ in range(15):
        opt.zero_grad()
        loss = loss_fn(model(image=x), y)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        logits = model(image=x)
    assert loss_fn(logits, y).item() < 0.5 * first
    assert (logits.argmax(1) == y).all()


def test_gradients_reach_every_parameter_resnet18_native():
    torch.manual_seed(0)
    model = build_model("resnet18", input_shape=(2, 12, 12), n_outputs=3)
    model(image=torch.randn(4, 2, 12, 12)).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
