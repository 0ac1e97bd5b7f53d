"""Output heads: encoding, masks, hand-computed losses, standardisation, decoding, state, config errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from astromodal.errors import BadValueError, ConfigError
from astromodal.training.heads import HEADS, Head, default_head, make_head, register_head
from astromodal.training.losses import make_loss
from astromodal.training.predictions import Categorical, Gaussian


def softplus(x):
    return math.log1p(math.exp(x))


# ---------------------------------------------------------------------- categorical
def test_categorical_balanced_weights_and_masked_cross_entropy_by_hand():
    y = np.array(["star", "qso", "star", "gal", "", "star"])  # "" = no label: ignored everywhere
    head = make_head("class", {"kind": "categorical", "class_weight": "balanced"}).fit_target(y)
    assert head.classes_.tolist() == ["gal", "qso", "star"] and head.n_outputs == 3
    # n / (K n_k) over the 5 labelled objects: gal 5/3, qso 5/3, star 5/9
    assert head.weights_ == pytest.approx([5 / 3, 5 / 3, 5 / 9])
    t = head.encode(y)
    assert t.tolist() == [2, 1, 2, 0, -1, 2]
    out = torch.zeros(6, 3)
    out[0, 2] = 1.0  # star object with a logit of 1 for its own class
    # rows: -log softmax; row 0: -log(e / (e + 2)), the others log 3; the missing row 4 counts for nothing
    l0, l3 = -math.log(math.e / (math.e + 2)), math.log(3)
    w = [5 / 9, 5 / 3, 5 / 9, 5 / 3, 5 / 9]
    rows = [l0, l3, l3, l3, l3]
    expected = sum(wi * ri for wi, ri in zip(w, rows, strict=True)) / sum(w)
    assert float(head.loss(out, t)) == pytest.approx(expected, rel=1e-6)


def test_unseen_class_is_an_error_naming_it_and_decode_gives_probabilities():
    head = make_head("class", "categorical").fit_target(np.array([3, 5, 5, 7]))
    with pytest.raises(BadValueError, match=r"\[4\]"):
        head.encode(np.array([3, 4]))
    pred = head.decode(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, math.log(2)]]))
    assert isinstance(pred, Categorical) and pred.classes.tolist() == [3, 5, 7]
    assert pred.proba[1] == pytest.approx([0.25, 0.25, 0.5])


def test_accuracy_counts_only_labelled_rows():
    head = make_head("c", "categorical").fit_target(np.array([0, 1, 2]))
    hit, valid = head.correct(torch.eye(3)[[0, 1, 0, 2]], torch.tensor([0, 1, 2, -1]))
    assert (int(hit), int(valid)) == (2, 3)


# ---------------------------------------------------------------------- binary
def test_binary_balanced_pos_weight_and_loss_by_hand():
    y = np.array([0, 0, 0, 1, -1])
    head = make_head("ob", {"kind": "binary", "class_weight": "balanced"}).fit_target(y)
    assert head.weights_.tolist() == [3.0] and head.n_outputs == 1  # n_neg / n_pos
    out = torch.tensor([[0.0], [1.0], [0.0], [2.0], [5.0]])
    # -[w y log s(x) + (1 - y) log(1 - s(x))], mean over the 4 labelled rows
    rows = [softplus(0.0), softplus(1.0), softplus(0.0), 3.0 * softplus(-2.0)]
    assert float(head.loss(out, head.encode(y))) == pytest.approx(sum(rows) / 4, rel=1e-6)
    pred = head.decode(np.array([[0.0], [math.log(3)]]))
    assert pred.proba.ravel().tolist() == pytest.approx([0.5, 0.5, 0.25, 0.75])


def test_binary_head_needs_two_classes():
    with pytest.raises(BadValueError, match="exactly 2 classes"):
        make_head("b", "binary").fit_target(np.array([0, 1, 2]))


# ---------------------------------------------------------------------- regression
def test_gaussian_standardises_on_valid_training_values_and_decodes_back():
    y = np.array([1.0, np.nan, 3.0, 5.0])
    head = make_head("radius", "gaussian").fit_target(y)
    std = math.sqrt(8 / 3)
    assert (head.mean_, head.std_) == pytest.approx((3.0, std))
    t = head.encode(y)
    assert torch.isnan(t[1]) and t[[0, 2, 3]].tolist() == pytest.approx([-2 / std, 0.0, 2 / std], rel=1e-6)
    # NLL by hand on the 3 valid rows: output (mean 0, raw 0) -> var softplus(0) + 1e-6
    var = softplus(0.0) + 1e-6
    rows = [0.5 * math.log(var) + v**2 / (2 * var) for v in (-2 / std, 0.0, 2 / std)]
    assert float(head.loss(torch.zeros(4, 2), t)) == pytest.approx(sum(rows) / 3, rel=1e-6)
    pred = head.decode(np.array([[1.0, 0.0], [0.0, 2.0]], dtype=np.float32))
    assert isinstance(pred, Gaussian) and pred.mean.tolist() == pytest.approx([3.0 + std, 3.0])
    assert pred.var.tolist() == pytest.approx([var * std**2, (softplus(2.0) + 1e-6) * std**2], rel=1e-6)


def test_constant_target_has_std_one_and_point_head_gives_no_variance():
    head = make_head("r", {"kind": "point", "loss": "l1"}).fit_target(np.array([2.0, 2.0, np.nan]))
    assert (head.mean_, head.std_) == (2.0, 1.0)
    t = head.encode(np.array([2.0, 4.0, np.nan]))
    assert float(head.loss(torch.tensor([[1.0], [1.0], [100.0]]), t)) == pytest.approx((1 + 1) / 2)
    pred = head.decode(np.array([[0.5]]))
    assert pred.mean.tolist() == [2.5] and not pred.has_variance
    mse = make_head("r", "point").fit_target(np.array([0.0, 2.0]))
    assert float(mse.loss(torch.tensor([[0.0], [0.0]]), torch.tensor([1.0, 3.0]))) == pytest.approx(5.0)


def test_all_missing_batch_gives_zero_loss_and_zero_gradients():
    for head, y in ((make_head("r", "gaussian").fit_target(np.array([1.0, 2.0])), [np.nan] * 3),
                    (make_head("r", "point").fit_target(np.array([1.0, 2.0])), [np.nan] * 3),
                    (make_head("c", {"kind": "categorical", "class_weight": "balanced"}).fit_target(
                        np.array([0, 1, 1])), [-1] * 3),
                    (make_head("b", {"kind": "binary", "class_weight": "balanced"}).fit_target(
                        np.array([0, 1, 1])), [-1] * 3)):
        out = torch.randn(3, head.n_outputs, requires_grad=True)
        loss = head.loss(out, head.encode(np.array(y)))
        loss.backward()
        assert float(loss.detach()) == 0.0 and out.grad is not None and torch.equal(out.grad, torch.zeros_like(out))


def test_missing_rows_do_not_change_the_loss_or_its_gradient():
    head = make_head("r", "gaussian").fit_target(np.array([0.0, 1.0, 2.0]))
    out = torch.randn(5, 2)
    y = torch.tensor([0.5, float("nan"), -1.0, float("nan"), 2.0])
    a = out.clone().requires_grad_()
    head.loss(a, y).backward()
    b = out[[0, 2, 4]].clone().requires_grad_()
    head.loss(b, y[[0, 2, 4]]).backward()
    assert torch.allclose(a.grad[[0, 2, 4]], b.grad) and torch.equal(a.grad[[1, 3]], torch.zeros(2, 2))


# ---------------------------------------------------------------------- state, specs, defaults
def test_state_round_trips_through_json():
    heads = [make_head("c", {"kind": "categorical", "class_weight": "balanced", "weight": 2}).fit_target(
        np.array(["a", "b", "b"])), make_head("r", "gaussian").fit_target(np.array([1.0, 4.0])),
        make_head("u", "point")]
    for head in heads:
        back = Head.from_state(json.loads(json.dumps(head.state())))
        assert type(back) is type(head) and back.state() == head.state()
    c = Head.from_state(json.loads(json.dumps(heads[0].state())))
    assert c.encode(np.array(["b", "a"])).tolist() == [1, 0] and c.weight == 2.0


def test_bad_specs_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="unknown head kind 'poisson'; registered: binary, categorical"):
        make_head("r", "poisson")
    with pytest.raises(ConfigError, match="unknown key 'class_weight' for a gaussian head; allowed keys: kind, weight"):
        make_head("r", {"kind": "gaussian", "class_weight": "balanced"})
    with pytest.raises(ConfigError, match="mse, l1"):
        make_head("r", {"kind": "point", "loss": "huber"})
    with pytest.raises(ConfigError, match="weight"):
        make_head("r", {"kind": "point", "weight": -1})
    with pytest.raises(ConfigError, match="no 'kind'"):
        make_head("r", {"weight": 1})
    assert make_head("r", {"loss": "gaussian_nll"}).kind == "gaussian"


def test_default_head_reproduces_the_auto_loss():
    ints, floats = np.array([0, 1, 1, 0]), np.array([0.1, 2.0, 3.5])
    assert default_head("y", ints).kind == "binary"
    assert default_head("y", ints, "cross_entropy").kind == "categorical"
    assert default_head("y", np.array([0, 1, 2])).kind == "categorical"
    assert default_head("y", floats).kind == "point"
    assert default_head("y", floats, "gaussian_nll").kind == "gaussian"
    with pytest.raises(ConfigError, match="classification loss"):
        default_head("y", floats, "mse", "balanced")
    # with the model's width: exactly the trainer's resolve_loss, and the very same loss values
    torch.manual_seed(0)
    for loss, n_out, y, cw in (("auto", 3, np.array([0, 2, 1, 1]), "balanced"), ("auto", 1, ints, "balanced"),
                               ("auto", 2, ints, None), ("auto", 2, floats, None), ("mse", 2, floats, None)):
        head = default_head("y", y, loss, cw, n_outputs=n_out, standardise=False).fit_target(y)
        out = torch.randn(len(y), n_out)
        target = torch.from_numpy(y.astype(np.float32) if y.dtype.kind == "f" else y)
        legacy = make_loss(loss, n_out, y, cw)(out, target)
        assert float(head.loss(out, head.encode(target))) == pytest.approx(float(legacy), rel=1e-6)  # masked path
        head.complete = True  # what the trainer sets when no target is missing: today's arithmetic, bit for bit
        assert torch.equal(head.loss(out, head.encode(target)), legacy)


def test_a_new_head_kind_is_one_decorated_class():
    @register_head("poisson_test")
    class PoissonHead(Head):
        task = "regression"

        @property
        def n_outputs(self) -> int:
            return 1

        def fit_target(self, y):
            self.fitted = True
            return self

        def encode(self, y):
            return torch.as_tensor(np.asarray(y, dtype=np.float32))

        def valid(self, y):
            return ~torch.isnan(y)

        def loss(self, out, y):
            rate = out.reshape(-1).exp()
            return (rate - y * out.reshape(-1)).mean()

    try:
        head = make_head("counts", "poisson_test").fit_target([1, 2])
        assert isinstance(head, PoissonHead) and "poisson_test" in HEADS.names()
        assert float(head.loss(torch.zeros(2, 1), head.encode([1.0, 3.0]))) == pytest.approx(1.0)
    finally:
        HEADS.unregister("poisson_test")


def test_given_classes_in_any_order_encode_to_their_own_index():
    head = make_head("c", {"kind": "categorical", "classes": ["star", "galaxy", "qso"]})
    head.fit_target(np.array(["star", "galaxy", "qso", "star"]))
    assert head.encode(np.array(["star", "galaxy", "qso", ""])).tolist() == [0, 1, 2, -1]
    assert list(head.decode(np.eye(3)).classes) == ["star", "galaxy", "qso"]
