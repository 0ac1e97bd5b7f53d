"""The training loop: config validation, learning, repeatability, early stopping, best weights, resume."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from torch import nn

from astromodal.errors import BadValueError, ConfigError
from astromodal.training.checkpoint import load_checkpoint
from astromodal.training.trainer import Trainer, TrainerConfig


class TinyMLP(nn.Module):
    inputs = ("columns",)

    def __init__(self, n_in: int = 4, n_out: int = 3, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_in, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, n_out))

    def forward(self, columns: torch.Tensor) -> torch.Tensor:
        return self.net(columns)


class Frozen(nn.Module):
    """Output does not depend on the trainable parameter: the loss can never improve."""

    inputs = ("columns",)

    def __init__(self):
        super().__init__()
        self.register_buffer("w", torch.tensor([[1.0, -1.0], [0.5, 0.2], [0.0, 0.0], [0.0, 0.0]]))
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, columns: torch.Tensor) -> torch.Tensor:
        return columns @ self.w + 0.0 * self.dummy


def blobs(n: int = 240, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    centres = torch.tensor([[2.0, 0, 0, 0], [-2.0, 2, 0, 0], [0.0, -2, 1, 0]])
    x = centres[y] + 0.5 * torch.randn(n, 4, generator=g)
    return x, y


def cfg(**kw) -> TrainerConfig:
    base = dict(max_epochs=5, batch_size=32, lr=1e-2, progress=False, device="cpu", patience=None)
    return TrainerConfig(**{**base, **kw})


def fresh(seed: int = 0, **kw) -> TinyMLP:
    torch.manual_seed(seed)
    return TinyMLP(**kw)


# ---------------------------------------------------------------------- config
def test_config_defaults_and_unknown_key():
    c = TrainerConfig()
    assert (c.max_epochs, c.batch_size, c.optimizer, c.lr, c.patience, c.val_fraction) == (50, 256, "adamw", 1e-3, 10, 0.1)
    with pytest.raises(ValidationError, match="epochs"):
        TrainerConfig(epochs=3)
    with pytest.raises(ConfigError, match="unknown key 'epochs'"):
        TrainerConfig.from_options({"epochs": 3})
    with pytest.raises(ConfigError, match="'device'"):
        TrainerConfig.from_options({"device": "tpu"})
    assert TrainerConfig(precision=16).precision == "16-mixed" and TrainerConfig(precision=32).precision == "32"
    with pytest.raises(ConfigError, match="'precision'"):
        TrainerConfig.from_options({"precision": "8"})
    with pytest.raises(ConfigError, match="'optimizer'"):
        TrainerConfig.from_options({"optimizer": "lbfgs"})


def test_sgd_is_nesterov_with_momentum_0_937():
    opt = Trainer(cfg(optimizer="sgd", weight_decay=1e-5))._optimizer(fresh())
    g = opt.param_groups[0]
    assert isinstance(opt, torch.optim.SGD) and g["nesterov"] and g["momentum"] == 0.937 and g["weight_decay"] == 1e-5


# ---------------------------------------------------------------------- fit
def test_fit_learns_and_reports_history():
    x, y = blobs()
    model = fresh()
    res = Trainer(cfg(max_epochs=8)).fit(model, {"columns": x}, y)
    assert [h["epoch"] for h in res.history] == list(range(1, 9))
    assert set(res.history[0]) == {"epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds"}
    assert res.loss == "cross_entropy" and res.n_outputs == 3
    assert res.n_val == 24 and res.n_train == 216  # val_fraction 0.1 of 240
    assert res.history[-1]["val_accuracy"] > 0.9
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert res.best_val_loss == pytest.approx(min(h["val_loss"] for h in res.history))


def test_best_weights_are_restored():
    x, y = blobs()
    xv, yv = blobs(90, seed=1)
    model = fresh()
    res = Trainer(cfg(max_epochs=12, lr=0.3, optimizer="sgd")).fit(model, {"columns": x}, y, {"columns": xv}, yv)
    logits = Trainer(cfg()).predict(model, {"columns": xv})
    val_loss = float(nn.functional.cross_entropy(logits, yv))
    best = res.history[res.best_epoch - 1]
    assert best["val_loss"] == res.best_val_loss == min(h["val_loss"] for h in res.history)
    assert val_loss == pytest.approx(best["val_loss"], rel=1e-5)


def test_same_seed_same_weights_other_seed_other_weights():
    x, y = blobs()

    def run(seed: int) -> dict[str, torch.Tensor]:
        model = fresh(0, dropout=0.3)  # dropout draws from the seeded global generator
        Trainer(cfg(seed=seed)).fit(model, {"columns": x}, y)
        return model.state_dict()

    a, b, c = run(3), run(3), run(4)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_early_stopping_counts_epochs_exactly():
    x, y = blobs()
    model = Frozen()
    res = Trainer(cfg(max_epochs=20, patience=2, weight_decay=0.0, loss="cross_entropy")).fit(
        model, {"columns": x}, y % 2)
    # epoch 1 sets the best loss; epochs 2 and 3 do not improve -> stop after 3
    assert len(res.history) == 3 and res.stopped_early and res.best_epoch == 1


def test_binary_bce_accuracy_and_regression_history():
    x, y = blobs()
    yb = (y == 0).long()
    res = Trainer(cfg(max_epochs=6, class_weight="balanced")).fit(fresh(n_out=1), {"columns": x}, yb)
    assert res.loss == "bce_logits" and res.history[-1]["val_accuracy"] > 0.9
    yr = (2.0 * x[:, 0] - x[:, 1]).float()
    res = Trainer(cfg(max_epochs=6)).fit(fresh(n_out=1), {"columns": x}, yr)
    assert res.loss == "mse" and "val_accuracy" not in res.history[0]
    res = Trainer(cfg(max_epochs=3)).fit(fresh(n_out=2), {"columns": x}, yr)
    assert res.loss == "gaussian_nll" and math.isfinite(res.history[-1]["val_loss"])


def test_no_validation_monitors_training_loss():
    x, y = blobs()
    res = Trainer(cfg(val_fraction=0.0, max_epochs=3)).fit(fresh(), {"columns": x}, y)
    assert res.monitor == "train_loss" and res.n_val == 0 and res.history[0]["val_loss"] is None
    assert res.best_val_loss == min(h["train_loss"] for h in res.history)


def test_schedulers_reach_their_end_points():
    x, y = blobs()
    res = Trainer(cfg(scheduler="cosine", warmup_epochs=1, lr=1e-2, min_lr=1e-4, max_epochs=4)).fit(
        fresh(), {"columns": x}, y)
    assert res.history[0]["lr"] == pytest.approx(1e-2)  # end of warm-up: the full rate
    assert res.history[-1]["lr"] == pytest.approx(1e-4)  # end of the cosine: min_lr
    res = Trainer(cfg(scheduler="onecycle", max_lr=1e-2, max_epochs=4)).fit(fresh(), {"columns": x}, y)
    peak = max(h["lr"] for h in res.history)
    assert peak <= 1e-2 and res.history[-1]["lr"] == pytest.approx(1e-2 / 25 / 1e4)  # max / div / final_div


def test_augment_runs_on_training_batches_only():
    class Count(nn.Module):
        def __init__(self):
            super().__init__()
            self.rows = 0

        def forward(self, t: torch.Tensor) -> torch.Tensor:
            self.rows += len(t)
            return t + 0.01

    x, y = blobs()
    aug = Count()
    res = Trainer(cfg(max_epochs=3)).fit(fresh(), {"columns": x}, y, augment=aug)
    assert aug.rows == 3 * res.n_train  # every training object once per epoch, validation untouched


def test_drop_last_and_bad_inputs():
    x, y = blobs()
    with pytest.raises(BadValueError, match="no batch"):
        Trainer(cfg(batch_size=1000, drop_last=True)).fit(fresh(), {"columns": x}, y)
    with pytest.raises(BadValueError, match="columns"):
        Trainer(cfg()).fit(fresh(), {"spectrum": x}, y)
    bad = x.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(BadValueError, match="NaN"):
        Trainer(cfg()).fit(fresh(), {"columns": bad}, y)


def test_precision_fallback_and_bf16_on_cpu():
    x, y = blobs()
    with pytest.warns(UserWarning, match="16-mixed"):
        res = Trainer(cfg(precision="16-mixed", max_epochs=2)).fit(fresh(), {"columns": x}, y)
    assert len(res.history) == 2
    res = Trainer(cfg(precision="bf16-mixed", max_epochs=4)).fit(fresh(), {"columns": x}, y)
    assert res.history[-1]["val_accuracy"] > 0.8


def test_predict_batched_eval_mode():
    x, _ = blobs(50)
    model = fresh(dropout=0.5)
    t = Trainer(cfg())
    a = t.predict(model, {"columns": x}, batch_size=7)
    b = t.predict(model, {"columns": x}, batch_size=64)
    assert a.shape == (50, 3) and torch.allclose(a, b, atol=1e-6) and not model.training  # dropout off


# ---------------------------------------------------------------------- checkpoints and resume
def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    x, y = blobs()
    straight = fresh(1, dropout=0.2)
    full = Trainer(cfg(max_epochs=6)).fit(straight, {"columns": x}, y)

    ck = tmp_path / "ck"
    first = fresh(1, dropout=0.2)
    part = Trainer(cfg(max_epochs=3, checkpoint_dir=str(ck))).fit(first, {"columns": x}, y)
    assert len(part.history) == 3 and (ck / "last.pt").is_file() and (ck / "best.pt").is_file()
    assert not list(ck.glob(".*tmp"))  # atomic writes leave no temporary file
    saved = load_checkpoint(ck / "last.pt")
    assert saved["epoch"] == 3 and len(saved["history"]) == 3

    resumed_model = fresh(99, dropout=0.2)  # other initial weights: the checkpoint must overwrite them
    resumed = Trainer(cfg(max_epochs=6, checkpoint_dir=str(ck))).fit(resumed_model, {"columns": x}, y)
    assert resumed.resumed_from_epoch == 3 and len(resumed.history) == 6
    assert [h["train_loss"] for h in resumed.history] == pytest.approx([h["train_loss"] for h in full.history])
    a, b = straight.state_dict(), resumed_model.state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert resumed.best_epoch == full.best_epoch

    # a finished run is not trained again
    again = Trainer(cfg(max_epochs=6, checkpoint_dir=str(ck))).fit(fresh(5, dropout=0.2), {"columns": x}, y)
    assert len(again.history) == 6 and again.resumed_from_epoch == 6


def test_checkpoint_of_other_data_is_refused(tmp_path):
    x, y = blobs()
    Trainer(cfg(max_epochs=1, checkpoint_dir=str(tmp_path))).fit(fresh(), {"columns": x}, y)
    with pytest.raises(ConfigError, match="other data"):
        Trainer(cfg(max_epochs=2, checkpoint_dir=str(tmp_path))).fit(fresh(), {"columns": x[:120]}, y[:120])


def test_numpy_inputs_are_accepted():
    x, y = blobs()
    res = Trainer(cfg(max_epochs=2)).fit(fresh(), {"columns": x.double().numpy()}, np.asarray(y))
    assert len(res.history) == 2


def test_config_augment_names_build_kornia_augmentation_for_images():
    """`augment: [hflip]` in the trainer config flips image batches in training (here always: p=1)."""
    import torch
    from torch import nn

    from astromodal.training.trainer import Trainer, TrainerConfig

    seen = []

    class Probe(nn.Module):
        inputs = ("image",)

        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, image):
            if self.training:
                seen.append(image.clone())
            return image.flatten(1)[:, :2] * 0 + self.w

    x = torch.arange(2 * 1 * 2 * 3, dtype=torch.float32).reshape(2, 1, 2, 3)
    y = torch.tensor([0, 1])
    cfg = TrainerConfig(max_epochs=1, batch_size=2, augment=["hflip"], augment_p=1.0, progress=False,
                        val_fraction=0, shuffle=False, patience=None)
    Trainer(cfg).fit(Probe(), {"image": x}, y)
    trained = [s for s in seen if s.shape[0] == 2][-1]
    assert torch.equal(trained, x.flip(-1))


def test_channels_last_trains_the_same_network_and_hands_it_back_in_the_usual_layout():
    from astromodal.models.registry import build_model

    rng = np.random.default_rng(0)
    y = torch.from_numpy(rng.integers(0, 3, 300))
    x = torch.from_numpy(rng.random((300, 1, 28, 28), dtype=np.float32) * 0.5)
    x[torch.arange(300), 0, y * 9 + 2, :] += 0.5  # a class-dependent bright row

    seen = []

    class Spy(nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.net = build_model("lenet", input_shape=(1, 28, 28), n_outputs=3)

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            weight = next(self.net.parameters())  # the first convolution's (6, 1, 5, 5) kernel
            seen.append(self.net.training and weight.stride() == (25, 1, 5, 1))
            return self.net(image=image)

    results = {}
    for layout in (False, True):
        seen.clear()
        model = Spy()
        res = Trainer(cfg(max_epochs=3, batch_size=64, lr=0.003, channels_last=layout)).fit(model, {"image": x}, y)
        results[layout] = res.history[-1]["val_loss"]
        assert any(seen) == layout  # the weights were channels-last during training only when asked
        assert all(p.is_contiguous() for p in model.parameters())  # handed back in the usual layout
    # the same arithmetic up to summation order
    assert results[True] == pytest.approx(results[False], rel=1e-3)
