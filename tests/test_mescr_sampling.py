"""MESCR weighted sampling (D_base and the class-targeted copies), member names and weights by name, drawn
duplicates augmented at least once per epoch, the flip label swap, and the per-member validation split."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from torch import nn

from astromodal.errors import ConfigError
from astromodal.experiments import ProtocolConfig
from astromodal.training.ensemble import (
    EnsembleEstimator,
    draw_probabilities,
    duplicate_flags,
    fit_resample_ensemble,
    mescr_weights,
)
from astromodal.training.estimator import _codes_of_pairs
from astromodal.training.heads import default_head
from astromodal.training.objectives import Objective
from astromodal.training.trainer import Trainer, TrainerConfig
from astromodal.transforms.augment import make_augmentation

ALL = ["rotation", "hflip", "vflip", "noise", "cutout", "erase"]


# ---------------------------------------------------------------------- the draw probabilities, by hand
def test_mescr_probabilities_on_a_tiny_label_set():
    y = np.array(["A", "A", "A", "F", "G"])
    # f = 3/5, 1/5, 1/5 -> base 1/f = (5/3, 5/3, 5/3, 5, 5), sum 15
    # D_A: A squared (25/9 each), sum 75/9 + 10 = 165/9 -> A 25/165 = 5/33, F and G 45/165 = 3/11
    # D_F: F squared (25), sum 5 + 25 + 5 = 35 -> A 1/21, F 5/7, G 1/7; D_G the mirror image
    expected = [[1 / 9, 1 / 9, 1 / 9, 1 / 3, 1 / 3],
                [5 / 33, 5 / 33, 5 / 33, 3 / 11, 3 / 11],
                [1 / 21, 1 / 21, 1 / 21, 5 / 7, 1 / 7],
                [1 / 21, 1 / 21, 1 / 21, 1 / 7, 5 / 7]]
    np.testing.assert_allclose(draw_probabilities("mescr", y, 4), expected, rtol=1e-12)
    w, classes = mescr_weights(y)
    assert classes.tolist() == ["A", "F", "G"]
    np.testing.assert_allclose(w[0], [5 / 3, 5 / 3, 5 / 3, 5, 5])  # unnormalised: 1/f, f = count / N
    # several heads: the first class head decides (a regression head first is skipped)
    heads = {"radius": np.array([1.0, 2.0, np.nan, 1.5, 0.5]), "class": np.array([0, 0, 0, 1, 2])}
    np.testing.assert_allclose(draw_probabilities("mescr", heads, 4, {"radius": "regression",
                                                                      "class": "classification"}), expected)


def test_mescr_missing_labels_are_a_group_without_a_member():
    # codes [0, 0, 1, -1]: f = 1/2, 1/4 and 1/4 for the missing label; base (2, 2, 4, 4) / 12
    # D_0: (4, 4, 4, 4) / 16; D_1: (2, 2, 16, 4) / 24
    p = draw_probabilities("mescr", np.array([0, 0, 1, -1]), 3)
    np.testing.assert_allclose(p, [[1 / 6, 1 / 6, 1 / 3, 1 / 3], [0.25] * 4, [1 / 12, 1 / 12, 2 / 3, 1 / 6]])


def test_mescr_needs_one_member_per_class_plus_base():
    with pytest.raises(ConfigError, match=r"1 \+ 3 members .*n_members is 6: set n_members: 4"):
        draw_probabilities("mescr", np.array(["A", "A", "A", "F", "G"]), 6)
    with pytest.raises(ConfigError, match="class target"):
        draw_probabilities("mescr", np.array([0.5, 1.5]), 3)


def test_duplicates_are_the_second_and_later_copies_in_draw_order():
    assert duplicate_flags(np.array([3, 1, 3, 3, 0, 1])).tolist() == [False, False, True, True, False, True]
    assert not duplicate_flags(np.arange(4)).any()


# ---------------------------------------------------------------------- members, names, weights by name
class Member:
    """A classifier stub over classes 0, 1, 2 that gives a fixed probability row and remembers its rows."""

    fits = 0

    def __init__(self, proba):
        self.task, self.proba, self.rows = "classification", np.asarray(proba, dtype=float), None

    def fit(self, X, y):
        Member.fits += 1
        self.rows, self.classes_ = np.asarray(X)[:, 0].astype(int), np.array([0, 1, 2])
        return self

    def predict_proba(self, X):
        return np.tile(self.proba, (len(X), 1))


def maker(rows):
    it = iter(rows)
    return lambda: Member(next(it))


Y = np.array([0, 0, 0, 1, 2])  # class codes of A, A, A, F, G
X = np.arange(5, dtype=float)[:, None]
PROBA = [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0]]  # base, A, F, G


def test_combine_weights_by_member_name_give_the_weighted_class_probabilities():
    res = fit_resample_ensemble(maker(PROBA), X, Y, 4, "mescr", {"G": 0.4, "base": 0.1, "F": 0.3, "A": 0.2},
                                seed=1, class_names=["A", "F", "G"], draw_size=7)
    assert res.member_names == ["base", "A", "F", "G"] and res.ensemble.member_names == res.member_names
    np.testing.assert_allclose(res.ensemble.weights, [0.1, 0.2, 0.3, 0.4])
    # 0.1 (1, 0, 0) + 0.2 (0, 1, 0) + 0.3 (0, 0, 1) + 0.4 (0.5, 0.5, 0) = (0.3, 0.4, 0.3)
    np.testing.assert_allclose(res.ensemble.predict_proba(X[:1]), [[0.3, 0.4, 0.3]])
    # the study's weights, normalised (they sum to 1 already)
    names = ["base", "A", "F", "G", "K", "M"]
    study = {"base": 0.1, "A": 0.2, "F": 0.1, "G": 0.2, "K": 0.15, "M": 0.25}
    ens = EnsembleEstimator([Member(np.eye(3)[0]).fit(X, Y) for _ in names], study, member_names=names)
    np.testing.assert_allclose(ens.weights, [0.1, 0.2, 0.1, 0.2, 0.15, 0.25])
    doubled = EnsembleEstimator([Member(np.eye(3)[0]).fit(X, Y) for _ in names], {k: 2 * v for k, v in study.items()},
                                member_names=names)
    np.testing.assert_allclose(doubled.weights, ens.weights)


def test_records_names_draw_size_class_counts_and_duplicates():
    res = fit_resample_ensemble(maker(PROBA), X, Y, 4, "mescr", seed=3, class_names=["A", "F", "G"], draw_size=9)
    assert [m["name"] for m in res.member_info] == ["base", "A", "F", "G"]
    for info, draw, dup, est in zip(res.member_info, res.draws, res.duplicates, res.members, strict=True):
        assert info["n_drawn"] == 9 and len(draw) == 9 and est.rows.tolist() == draw.tolist()
        codes = Y[draw]
        assert info["class_counts"] == {n: int((codes == k).sum()) for k, n in enumerate("AFG") if (codes == k).any()}
        assert dup.tolist() == duplicate_flags(draw).tolist() and info["n_duplicates"] == int(dup.sum())
        assert info["n_unique"] == len(np.unique(draw)) and info["n_oob"] == 5 - len(np.unique(draw))
    assert res.augment_duplicates["applied"] is False and "not neural" in res.augment_duplicates["reason"]
    again = fit_resample_ensemble(maker(PROBA), X, Y, 4, "mescr", seed=3, class_names=["A", "F", "G"], draw_size=9)
    assert all(np.array_equal(a, b) for a, b in zip(res.draws, again.draws, strict=True))  # seeds repeat exactly
    other = fit_resample_ensemble(maker(PROBA), X, Y, 4, "mescr", seed=4, draw_size=9)
    assert any(not np.array_equal(a, b) for a, b in zip(res.draws, other.draws, strict=True))
    assert other.member_names == ["base", "0", "1", "2"]  # without class names: the labels' text


def test_the_class_copy_draws_its_class_more_often():
    y = np.array([0] * 60 + [1] * 30 + [2] * 10)
    res = fit_resample_ensemble(maker([[1, 0, 0]] * 4), np.arange(100.0)[:, None], y, 4, "mescr", seed=0,
                                draw_size=9000)
    share = [np.bincount(y[d], minlength=3) / 9000 for d in res.draws]
    # expected shares: base 1/3 each; D_k: class k's weight 1/f_k^2 -> e.g. D_2: 10 * 100 / (60 * 100/60 +
    # 30 * 100/30 + 10 * 100) = 1000 / 1200
    np.testing.assert_allclose(share[0], [1 / 3] * 3, atol=0.02)
    np.testing.assert_allclose(share[3], [100 / 1200, 100 / 1200, 1000 / 1200], atol=0.02)
    np.testing.assert_allclose(share[1], [1000 / 6 / (1000 / 6 + 200), 100 / (1000 / 6 + 200), 100 / (1000 / 6 + 200)],
                               atol=0.02)


@pytest.mark.parametrize("weights, message", [
    ({"base": 1, "A": 1, "F": 1, "G": 1, "M": 1}, r"names \['M'\], which the members lack"),
    ({"base": 1, "A": 1, "F": 1}, r"no weight for the member\(s\) \['G'\]"),
])
def test_weights_by_name_errors_come_before_any_member_trains(weights, message):
    Member.fits = 0
    with pytest.raises(ConfigError, match=message):
        fit_resample_ensemble(maker(PROBA), X, Y, 4, "mescr", weights, class_names=["A", "F", "G"])
    assert Member.fits == 0
    with pytest.raises(ConfigError, match=r"1 \+ 3 members"):
        fit_resample_ensemble(maker(PROBA * 2), X, Y, 6, "mescr")
    with pytest.raises(ConfigError, match="only the members of member_weights 'mescr' have names"):
        fit_resample_ensemble(maker(PROBA), X, Y, 4, "balanced", {"base": 1})
    assert Member.fits == 0


def test_protocol_config_keys_and_their_dump():
    p = ProtocolConfig(kind="resample_ensemble", member_weights="mescr", draw_size=9000,
                       combine_weights={"base": 0.1, "A": 0.2, "F": 0.1, "G": 0.2, "K": 0.15, "M": 0.25})
    dump = p.model_dump()
    assert dump["draw_size"] == 9000 and dump["combine_weights"]["M"] == 0.25 and dump["member_weights"] == "mescr"
    # keys left unset are not dumped: the fingerprints of earlier resample cells stay as they were
    plain = ProtocolConfig(kind="resample_ensemble").model_dump()
    assert not {"draw_size", "augment_duplicates", "validation_by_source"} & set(plain)
    assert "augment_duplicates" in ProtocolConfig(kind="resample_ensemble", augment_duplicates=False).model_dump()
    with pytest.raises(ValidationError, match="only member_weights mescr names its members"):
        ProtocolConfig(kind="resample_ensemble", combine_weights={"base": 1.0})
    with pytest.raises(ValidationError, match="draw_size.*resample_ensemble"):
        ProtocolConfig(kind="holdout", draw_size=10)
    with pytest.raises(ValidationError, match="non-negative"):
        ProtocolConfig(kind="resample_ensemble", member_weights="mescr", combine_weights={"base": -1.0})


# ---------------------------------------------------------------------- forced augmentation
def _images(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 0.5 + torch.rand(n, 3, 16, 16, generator=g)


def test_forced_rows_get_one_operation_when_their_draw_gave_none():
    x = _images()
    force = torch.tensor([True, False, True, False, True, True])
    aug = make_augmentation(["hflip"], p=0.0, seed=0)
    out = aug(x, force=force)
    for i in range(6):
        assert torch.equal(out[i], x[i].flip(-1) if force[i] else x[i])
    assert aug.applied.tolist() == [1, 0, 1, 0, 1, 1] and aug.mirrored.tolist() == force.tolist()
    aug = make_augmentation(ALL, p=0.0, seed=5)
    for _ in range(4):  # every call (epoch): every forced image changed, the others untouched
        out = aug(x, force=force)
        changed = [not torch.equal(out[i], x[i]) for i in range(6)]
        assert changed == force.tolist() and (aug.applied[force] >= 1).all()
    # without a mask the stream and the result are those of before (the same seed, the same batches)
    a, b = make_augmentation(ALL, p=0.5, seed=2), make_augmentation(ALL, p=0.5, seed=2)
    assert torch.equal(a(x), b(x, force=torch.zeros(6, dtype=torch.bool)))


def test_forced_operation_shares_the_geometric_draw_across_inputs():
    x = _images()
    aug = make_augmentation(["rotation", "hflip", "cutout", "erase"], p=0.0, seed=1)
    a, b = aug.forward_many([x, x.clone()], force=torch.ones(6, dtype=torch.bool))
    assert torch.equal(a, b) and all(not torch.equal(a[i], x[i]) for i in range(6))


class Recorder(nn.Module):
    """A model over one image input that remembers the images it trained on (training mode) and was
    validated on (eval mode after the first, probing, call)."""

    inputs = ("image",)

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(1, 3)
        self.train_seen: list[torch.Tensor] = []
        self.eval_seen: list[torch.Tensor] = []

    def forward(self, image):
        (self.train_seen if self.training else self.eval_seen).append(image.detach().clone())
        return self.lin(image.mean(dim=(1, 2, 3))[:, None])


def tcfg(**kw) -> TrainerConfig:
    base = dict(max_epochs=3, batch_size=64, lr=1e-2, progress=False, device="cpu", patience=None, shuffle=False,
                val_fraction=0.0, augment=ALL, augment_p=0.0)
    return TrainerConfig(**{**base, **kw})


def test_trainer_augments_the_flagged_rows_in_every_epoch_and_never_validation():
    x = _images(12, seed=3)
    y = np.arange(12) % 3
    force = np.arange(12) % 2 == 1
    model = Recorder()
    Trainer(tcfg()).fit(model, {"image": x}, y, force_augment=force)
    assert len(model.train_seen) == 3  # one batch per epoch
    for seen in model.train_seen:
        changed = [not torch.equal(seen[i], x[i]) for i in range(12)]
        assert changed == force.tolist()
    # with a validation part: the validation images are never augmented, even flagged ones (p = 1 here)
    model = Recorder()
    Trainer(tcfg(val_fraction=0.25, augment_p=1.0)).fit(model, {"image": x}, y, force_augment=np.ones(12, bool))
    rows = {round(float(v.sum()), 3): v for v in x}
    for batch in model.eval_seen[1:]:
        assert all(torch.equal(rows[round(float(v.sum()), 3)], v) for v in batch)


def test_validation_split_keeps_the_copies_of_a_row_together():
    base = _images(10, seed=4)
    draw = np.array([0, 0, 0, 1, 2, 2, 3, 4, 5, 5, 6, 7, 8, 9, 9, 9])  # copies of rows 0, 2, 5, 9
    x = base[torch.from_numpy(draw)]
    y = draw % 2
    model = Recorder()
    res = Trainer(tcfg(augment=[], val_fraction=0.25, max_epochs=1)).fit(model, {"image": x}, y, groups=draw)
    sums = {round(float(v.sum()), 3): i for i, v in enumerate(base)}
    train_rows = {sums[round(float(v.sum()), 3)] for v in model.train_seen[0]}
    val_rows = {sums[round(float(v.sum()), 3)] for v in torch.cat(model.eval_seen[1:])}
    assert train_rows.isdisjoint(val_rows) and train_rows | val_rows == set(range(10))
    assert res.n_train + res.n_val == 16 and res.n_train == int(np.isin(draw, list(train_rows)).sum())


# ---------------------------------------------------------------------- mirrored labels swap
class SeeLabels(Objective):
    """The objective of one class head that remembers the training labels of each batch."""

    def __init__(self, y):
        super().__init__([default_head("galaxy", y)])
        self.seen: list[torch.Tensor] = []

    def forward(self, outputs, targets):
        if torch.is_grad_enabled():
            self.seen.append(targets["galaxy"].clone())
        return super().forward(outputs, targets)


class TwoRecorder(Recorder):
    inputs = ("gri", "urz")

    def forward(self, gri, urz):
        if self.training:
            self.train_seen.append(torch.stack([gri, urz]).detach().clone())
        return self.lin(gri.mean(dim=(1, 2, 3))[:, None])


@pytest.mark.parametrize("names, swapped", [(["hflip"], True), (["vflip"], True), (["hflip", "vflip"], False),
                                            (["rotation"], False)])
def test_flip_swaps_the_handed_labels_rotation_does_not(names, swapped):
    x = _images(9, seed=6)
    y = np.array([0, 1, 2] * 3)  # 0 elliptical, 1 clockwise, 2 anticlockwise
    obj = SeeLabels(y)
    Trainer(tcfg(augment=names, augment_p=1.0, max_epochs=1, augment_flip_swap=[[1, 2]])).fit(
        Recorder(), {"image": x}, {"galaxy": y}, objective=obj)
    expected = np.array([0, 2, 1] * 3) if swapped else y
    assert obj.seen[0].tolist() == expected.tolist()


def test_flip_swap_follows_the_shared_draw_of_two_inputs_and_original_labels():
    x = _images(32, seed=7)
    y = np.array(["E", "CW", "ACW", "E"] * 8)  # classes sorted: ACW 0, CW 1, E 2
    obj = SeeLabels(y)
    model = TwoRecorder()
    Trainer(tcfg(augment=["hflip"], augment_p=0.5, max_epochs=1, augment_flip_swap=[["CW", "ACW"]])).fit(
        model, {"gri": x, "urz": x.clone()}, {"galaxy": y}, objective=obj)
    gri, urz = model.train_seen[0]
    flipped = np.array([bool(torch.equal(gri[i], x[i].flip(-1))) for i in range(32)])
    assert torch.equal(gri, urz) and 0 < flipped.sum() < 32  # the same draw on both inputs
    codes = np.array([{"ACW": 0, "CW": 1, "E": 2}[v] for v in y])
    expected = np.where(flipped & (codes < 2), 1 - codes, codes)
    assert obj.seen[0].tolist() == expected.tolist()
    # the estimator's single-target path: original labels to the codes its trainer sees
    assert _codes_of_pairs([["CW", "ACW"]], np.array(["ACW", "CW", "E"])) == [[1, 0]]
    assert _codes_of_pairs([[1, 2]], np.array([0, 1, 2, 3])) == [[1, 2]]
    with pytest.raises(ConfigError, match="label 'S' is not a class"):
        _codes_of_pairs([["S", "CW"]], np.array(["ACW", "CW", "E"]))


def test_flip_swap_errors():
    x, y = _images(6), np.array([0, 1, 2] * 2)
    with pytest.raises(ConfigError, match="label 7 is not a class of head 'galaxy'"):
        Trainer(tcfg(augment=["hflip"], augment_flip_swap=[[1, 7]])).fit(Recorder(), {"image": x}, {"galaxy": y},
                                                                          objective=SeeLabels(y))
    with pytest.raises(ConfigError, match="needs a kornia augmentation"):
        Trainer(tcfg(augment=[], augment_flip_swap=[[1, 2]])).fit(Recorder(), {"image": x}, {"galaxy": y},
                                                                  objective=SeeLabels(y))
    with pytest.raises(ValidationError, match="pair of two different labels"):
        TrainerConfig(augment_flip_swap=[[1, 1]])
    with pytest.raises(ValidationError, match="one pair only"):
        TrainerConfig(augment_flip_swap=[[1, 2], [2, 3]])


# ---------------------------------------------------------------------- neural members and the cell record
def test_neural_members_get_forced_augmentation_and_a_split_of_their_own_draw():
    from astromodal.training.estimator import make_estimator

    rng = np.random.default_rng(0)
    y = np.array([0] * 20 + [1] * 8 + [2] * 4)
    X = {"image": (rng.normal(size=(32, 1, 8, 8)) + y[:, None, None, None]).astype(np.float32)}
    trainer = dict(max_epochs=1, batch_size=16, progress=False, device="cpu", val_fraction=0.2, augment=["hflip"])
    res = fit_resample_ensemble(lambda: make_estimator("simple_cnn1", trainer=trainer), X, y, 4, "mescr", seed=0,
                                draw_size=40)
    assert res.augment_duplicates == {"setting": True, "applied": True}
    for info in res.member_info:
        assert info["n_train"] + info["n_val"] == 40 and info["n_val"] > 0  # 8:2 inside the member's own draw
        assert sum(info["class_counts"].values()) == 40
    off = fit_resample_ensemble(lambda: make_estimator("simple_cnn1", trainer={**trainer, "augment": []}), X, y, 4,
                                "mescr", seed=0, draw_size=40)
    assert off.augment_duplicates["applied"] is False and "no 'augment'" in off.augment_duplicates["reason"]


def test_the_protocol_records_names_draw_size_and_class_counts(tmp_path):
    from astromodal.data.dataset import Column, Dataset, Target
    from astromodal.evaluation.benchmark import BenchmarkRunner
    from astromodal.experiments import parse_config

    rng = np.random.default_rng(0)
    y = np.array([0] * 70 + [1] * 20 + [2] * 10)
    X = rng.normal(size=(100, 2)) + 3.0 * np.eye(3, 2)[y]
    path = Dataset(ids=np.array([f"s{i}" for i in range(100)]), ra=rng.uniform(0, 360, 100),
                   dec=rng.uniform(-60, 60, 100), columns={f"c{k}": Column(X[:, k]) for k in range(2)},
                   targets={"class": Target(y, "class", ("G", "K", "M"))}).save(tmp_path / "t.h5")
    cfg = parse_config({
        "name": "mescr_tiny", "datasets": {"t": {"source": "hdf5", "options": {"path": str(path)}}},
        "representations": {"cols": {"kind": "columns", "columns": ["c0", "c1"]}},
        "models": [{"name": "logistic_regression"}], "report": {"embeddings": [], "roc_curves": False},
        "protocol": {"kind": "resample_ensemble", "n_members": 4, "member_weights": "mescr", "draw_size": 50,
                     "combine_weights": {"base": 0.1, "G": 0.2, "K": 0.3, "M": 0.4}}})
    (cell,) = BenchmarkRunner(cfg, tmp_path / "run").run()["cells"]
    assert cell["member_names"] == ["base", "G", "K", "M"] and cell["draw_size"] == 50
    assert cell["combine_weights"] == pytest.approx([0.1, 0.2, 0.3, 0.4])
    counts = [m["class_counts"] for m in cell["members"]]
    assert all(sum(c.values()) == 50 for c in counts)
    assert counts[3]["M"] > counts[0]["M"]  # D_M draws its class more often than D_base (seeded)
    assert cell["augment_duplicates"]["applied"] is False
    bad = {**cfg.protocol.model_dump(), "combine_weights": {"base": 1, "G": 1, "K": 1, "M": 1, "A": 1}}
    cfg2 = cfg.model_copy(update={"protocol": ProtocolConfig(**bad)})
    with pytest.raises(ConfigError, match=r"\['A'\], which the members lack"):
        BenchmarkRunner(cfg2, tmp_path / "run2").run()


def test_resume_is_refused_after_the_force_mask_or_flip_swap_changes(tmp_path):
    # review R3: the checkpoint fingerprint holds the forced rows and the swapped labels, so a member
    # resumed after a new draw (same size, other duplicates) or another augment_flip_swap starts refused
    from astromodal.errors import ConfigError

    x = _images(12, seed=5)
    y = np.arange(12) % 3
    force = np.arange(12) % 2 == 1
    ck = str(tmp_path / "ck")
    Trainer(tcfg(max_epochs=1, checkpoint_dir=ck)).fit(Recorder(), {"image": x}, y, force_augment=force)
    with pytest.raises(ConfigError, match="other data"):
        Trainer(tcfg(max_epochs=2, checkpoint_dir=ck)).fit(Recorder(), {"image": x}, y, force_augment=~force)
    Trainer(tcfg(max_epochs=2, checkpoint_dir=ck)).fit(Recorder(), {"image": x}, y, force_augment=force)  # same: resumes
    ck2 = str(tmp_path / "ck2")
    Trainer(tcfg(max_epochs=1, checkpoint_dir=ck2, augment=["hflip"], augment_flip_swap=[[0, 1]])).fit(
        Recorder(), {"image": x}, y)
    with pytest.raises(ConfigError, match="other data"):
        Trainer(tcfg(max_epochs=2, checkpoint_dir=ck2, augment=["hflip"], augment_flip_swap=[[1, 2]])).fit(
            Recorder(), {"image": x}, y)
