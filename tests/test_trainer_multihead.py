"""The trainer with several heads, masked targets, a contrastive objective and several image inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from astromodal.errors import BadValueError, ConfigError
from astromodal.training.heads import make_head
from astromodal.training.objectives import ContrastiveObjective, Objective
from astromodal.training.trainer import Trainer, TrainerConfig


def cfg(**kw) -> TrainerConfig:
    base = dict(max_epochs=4, batch_size=32, lr=1e-2, progress=False, device="cpu", patience=None)
    return TrainerConfig(**{**base, **kw})


class TwoHeads(nn.Module):
    inputs = ("columns",)

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(4, 16), nn.ReLU())
        self.cls = nn.Linear(16, 3)
        self.rad = nn.Linear(16, 2)

    def forward(self, columns):
        h = self.body(columns)
        return {"class": self.cls(h), "radius": self.rad(h)}


def stars_and_galaxies(n: int = 240, seed: int = 0):
    """class 0 = star (has a radius), 1 and 2 = galaxies (radius NaN); a few objects without a class."""
    rng = np.random.default_rng(seed)
    cls = np.arange(n) % 3
    x = rng.normal(size=(n, 4)).astype(np.float32) + np.eye(4, dtype=np.float32)[cls] * 2
    radius = np.where(cls == 0, 10.0 + 3.0 * x[:, 3], np.nan)
    labels = np.array(["star", "galaxy", "qso"])[cls].astype(object)
    labels[::17] = None  # no class for these
    return x, {"class": labels, "radius": radius}


def heads() -> Objective:
    return Objective([make_head("class", "categorical"), make_head("radius", {"kind": "gaussian", "weight": 0.5})])


def test_two_heads_with_masks_train_and_report_per_head_history():
    x, y = stars_and_galaxies()
    obj = heads()
    res = Trainer(cfg(max_epochs=6)).fit(TwoHeads(), {"columns": x}, y, objective=obj)
    rec = res.history[-1]
    expected = {"epoch", "train_loss", "val_loss", "lr", "seconds", "train_loss_class", "train_loss_radius",
                "val_loss_class", "val_loss_radius", "val_accuracy_class"}
    assert set(rec) == expected
    assert all(np.isfinite(h["train_loss"]) and np.isfinite(h["val_loss"]) for h in res.history)
    assert rec["val_loss"] == pytest.approx(rec["val_loss_class"] + 0.5 * rec["val_loss_radius"])
    assert rec["val_accuracy_class"] > 0.8
    assert res.history[-1]["train_loss_radius"] < res.history[0]["train_loss_radius"]
    # the heads were fitted on the training part only (the seeded 10 % validation split held out)
    r = obj.heads["radius"]
    assert r.fitted and r.mean_ == pytest.approx(10.0, abs=1.0) and res.n_train == 216
    assert obj.heads["class"].classes_.tolist() == ["galaxy", "qso", "star"]


def test_heads_see_training_targets_only():
    x, y = stars_and_galaxies()
    xv, yv = stars_and_galaxies(60, seed=1)
    yv["radius"] = yv["radius"] + 1000.0  # would move the mean a lot if it were used
    obj = heads()
    Trainer(cfg(max_epochs=1)).fit(TwoHeads(), {"columns": x}, y, {"columns": xv}, yv, objective=obj)
    valid = y["radius"][~np.isnan(y["radius"])]
    assert obj.heads["radius"].mean_ == pytest.approx(valid.mean()) and obj.heads["radius"].std_ == pytest.approx(valid.std())


def test_default_heads_for_a_dict_of_targets_and_dict_predictions():
    x, y = stars_and_galaxies()
    y = {"class": y["class"], "radius": np.nan_to_num(y["radius"], nan=np.nan)}
    model = TwoHeads()
    model.rad = nn.Linear(16, 1)  # a point head (mse) by default for a real target
    res = Trainer(cfg(max_epochs=2)).fit(model, {"columns": x}, y)
    kinds = {n: h.kind for n, h in res.objective.heads.items()}
    assert kinds == {"class": "categorical", "radius": "point"}
    out = Trainer(cfg()).predict(model, {"columns": x[:5]})
    assert isinstance(out, dict) and out["class"].shape == (5, 3) and out["radius"].shape == (5, 1)


def test_output_width_and_names_are_checked():
    x, y = stars_and_galaxies(60)
    model = TwoHeads()
    model.rad = nn.Linear(16, 3)
    with pytest.raises(ConfigError, match="'radius'.*3 column"):
        Trainer(cfg(max_epochs=1)).fit(model, {"columns": x}, y, objective=heads())
    with pytest.raises(BadValueError, match="no target for the head 'radius'"):
        Trainer(cfg(max_epochs=1)).fit(TwoHeads(), {"columns": x}, {"class": y["class"]}, objective=heads())


def test_resuming_with_other_target_normalisation_or_seed_is_refused(tmp_path):
    x, y = stars_and_galaxies(120)
    Trainer(cfg(max_epochs=1, checkpoint_dir=str(tmp_path))).fit(TwoHeads(), {"columns": x}, y, objective=heads())
    other = {"class": y["class"], "radius": y["radius"] * 2.0}  # same shapes, other mean / std
    with pytest.raises(ConfigError, match="differs in: objective"):
        Trainer(cfg(max_epochs=2, checkpoint_dir=str(tmp_path))).fit(TwoHeads(), {"columns": x}, other,
                                                                      objective=heads())
    with pytest.raises(ConfigError, match="differs in: .*seed"):
        Trainer(cfg(max_epochs=2, seed=7, checkpoint_dir=str(tmp_path))).fit(TwoHeads(), {"columns": x}, y,
                                                                             objective=heads())
    with pytest.raises(ConfigError, match="differs in: batch_size"):  # other steps per epoch and schedule
        Trainer(cfg(max_epochs=2, batch_size=16, checkpoint_dir=str(tmp_path))).fit(TwoHeads(), {"columns": x}, y,
                                                                                    objective=heads())
    res = Trainer(cfg(max_epochs=2, checkpoint_dir=str(tmp_path))).fit(TwoHeads(), {"columns": x}, y, objective=heads())
    assert res.resumed_from_epoch == 1 and len(res.history) == 2


def test_validation_split_is_stratified_on_the_first_class_head():
    x, y = stars_and_galaxies(200)
    y["class"] = np.where(np.arange(200) < 20, "rare", "common").astype(object)  # 10 % rare
    seen = {}

    class Spy(nn.Module):
        inputs = ("columns",)

        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 2)

        def forward(self, columns):
            if not self.training and len(columns) > 2:
                seen["val"] = columns.clone()
            return {"class": self.lin(columns)}

    obj = Objective([make_head("class", "categorical")])
    Trainer(cfg(max_epochs=1, val_fraction=0.2, batch_size=64)).fit(Spy(), {"columns": x}, {"class": y["class"]},
                                                                   objective=obj)
    val_rows = [int(np.flatnonzero((x == r.numpy()).all(axis=1))[0]) for r in seen["val"]]
    assert len(val_rows) == 40 and sum(r < 20 for r in val_rows) == 4  # the rare class keeps its 10 %


class PairEncoder(nn.Module):
    inputs = ("image", "spectrum")

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.img = nn.Sequential(nn.Flatten(), nn.Linear(16, 8))
        self.spec = nn.Linear(10, 8)

    def forward(self, image, spectrum):
        return {"image": self.img(image), "spectrum": self.spec(spectrum)}


def test_contrastive_objective_trains_without_targets_and_learns_its_temperature():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(256, 6)).astype(np.float32)  # the shared latent of each object
    image = (z @ rng.normal(size=(6, 16)).astype(np.float32)).reshape(256, 1, 4, 4)
    spectrum = z @ rng.normal(size=(6, 10)).astype(np.float32)
    obj = ContrastiveObjective(pair=("image", "spectrum"))
    res = Trainer(cfg(max_epochs=8, batch_size=64, lr=3e-3)).fit(
        PairEncoder(), {"image": image, "spectrum": spectrum}, None, objective=obj)
    assert res.history[-1]["train_loss"] < 0.7 * res.history[0]["train_loss"]
    assert res.history[-1]["val_loss"] is not None and "val_accuracy" not in res.history[-1]
    assert obj.temperature != pytest.approx(0.07) and res.history[-1]["temperature"] == pytest.approx(obj.temperature)
    with pytest.raises(ConfigError, match="needs an objective"):
        Trainer(cfg()).fit(PairEncoder(), {"image": image, "spectrum": spectrum}, None)


class TwoImages(nn.Module):
    inputs = ("gri", "urz")

    def __init__(self, seen: list):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.seen = seen

    def forward(self, gri, urz):
        if self.training:
            self.seen.append((gri.clone(), urz.clone()))
        return gri.flatten(1)[:, :2] * 0 + self.w


@pytest.mark.parametrize("same", [True, False])
def test_config_augmentation_applies_to_every_image_input_with_the_same_draw(same):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(16, 1, 12, 12, generator=g)
    small = torch.nn.functional.avg_pool2d(x, 2)  # a lower-resolution view of the same objects
    y = torch.arange(16) % 2
    seen: list = []
    c = cfg(max_epochs=1, batch_size=16, augment=["rotation", "hflip", "erase"], augment_p=1.0, val_fraction=0,
            shuffle=False, augment_same=same)
    Trainer(c).fit(TwoImages(seen), {"gri": x, "urz": x.clone()}, y)
    gri, urz = seen[-1]
    assert not torch.equal(gri, x)  # augmented
    assert torch.equal(gri, urz) == same  # identical inputs stay identical only with the same draw
    seen.clear()
    c = cfg(max_epochs=1, batch_size=16, augment=["hflip"], augment_p=0.5, val_fraction=0, shuffle=False,
            augment_same=same)
    Trainer(c).fit(TwoImages(seen), {"gri": x, "urz": small}, y)
    gri, urz = seen[-1]
    flipped_gri = [bool(torch.equal(gri[i], x[i].flip(-1))) for i in range(16)]
    flipped_urz = [bool(torch.equal(urz[i], small[i].flip(-1))) for i in range(16)]
    assert 0 < sum(flipped_gri) < 16 and (flipped_gri == flipped_urz) == same
