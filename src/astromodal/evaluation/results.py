"""Typed benchmark results: one :class:`CellResult` per cell, one :class:`HeadResult` per head.

A cell (dataset x representation x model x seed) predicts one or more targets ("heads": ``class``,
``radius``, ...). Each head is scored on the test objects where its target applies (a galaxy has no
stellar radius: NaN, or class code -1, rows are left out of that head's scores) and compared with its own
trivial baseline. The cell keeps its first (primary) head's ``metrics``, ``class_names`` / ``unit``,
``baseline`` and ``beats_baseline`` at the top level too, so a single-target cell has exactly the keys
it had before heads existed (``cells/*.json``, ``results.json``, ``results.csv`` and the published
tables read them).

A cell on disk is read back through :meth:`CellResult.model_validate`; :data:`SCORING_VERSION` enters the
cell fingerprint, so a cell scored by an older version is trained and scored again.

The report takes a list of results and a :class:`DataSummary` (built by the runner: per dataset and
target the object and class counts), never the runner itself.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: Bumped whenever what a cell records changes meaning (per-head results): a cell written by an older
#: version has another fingerprint, so a re-run trains and scores it again instead of reusing it. Added
#: optional keys do not bump it (the ``ece`` / reliability curve of class heads, ``z_mean`` / ``z_std`` of
#: Gaussian heads, ``calibration``): an older cell reads back without them and the report leaves them blank.
SCORING_VERSION = 2


class HeadResult(BaseModel):
    """The scores of one head of a cell on its test objects (those where the target applies).

    ``kind``: the prediction's kind (``categorical`` or ``gaussian``); ``task`` classification or
    regression; ``metrics``: :func:`~astromodal.evaluation.metrics.classification_metrics` (with ``ci95``,
    the 95 % bootstrap intervals) or :func:`~astromodal.evaluation.metrics.regression_metrics` (with
    ``nll``, ``coverage_68/95``, ``mean_sigma`` when a variance is predicted); ``curves``: ``roc``
    (``proba`` of class 1 and ``y_true`` per test object, binary heads with probabilities) and ``pit``
    (the PIT histogram, Gaussian heads with a variance), ``reliability`` (the reliability diagram's bins of
    a class head with probabilities, :func:`~astromodal.evaluation.metrics.reliability`); ``sigma_net``: mean and median over the test
    objects of the spread of an ensemble's member means.
    """

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    kind: str  # the prediction kind its scorer is registered under (protocols.SCORERS)
    task: Literal["classification", "regression"]
    metrics: dict[str, Any]
    class_names: list[str] | None = None
    unit: str | None = None
    n: int = 0  # test objects scored (where the target applies)
    curves: dict[str, Any] = Field(default_factory=dict)
    baseline: dict[str, Any] | None = None
    beats_baseline: bool | None = None
    sigma_net: dict[str, float] | None = None
    fold_scores: list[float] | None = None  # cv: the headline score per fold
    #: protocol.recalibrate: {"method": "temperature" | "variance_scale", "parameter": T or c, "n_calibration",
    #: "n", "fit": {"nll_before", "nll_after", ...} (on the calibration rows), "before" / "after": the test split's
    #: calibration metrics raw and recalibrated} (astromodal.evaluation.calibration); ``metrics`` stay raw
    calibration: dict[str, Any] | None = None

    @property
    def ci95(self) -> dict[str, list[float]] | None:
        """The 95 % bootstrap intervals of a classification head (``metrics["ci95"]``)."""
        return self.metrics.get("ci95")

    @property
    def headline(self) -> float:
        """Accuracy (classification) or RMSE (regression)."""
        return float(self.metrics["accuracy"] if self.task == "classification" else self.metrics["rmse"])


class CellResult(BaseModel):
    """One finished cell: the shared keys, the primary head's scores at the top level, every head under
    ``heads``, and whatever its protocol adds (``folds``, ``members``, ``oob``, ``threshold``,
    ``fold_scores``, ...; a protocol of one's own may add further keys: they are kept)."""

    model_config = ConfigDict(extra="allow", protected_namespaces=())

    cell: str
    dataset: str
    representation: str
    model: str
    model_name: str
    family: str
    seed: int
    n_train: int
    n_test: int
    task: Literal["classification", "regression"]
    fit_seconds: float | None = None
    n_parameters: int | None = None
    n_members: int = 1
    history: list[dict[str, Any]] | None = None
    model_dir: str | None = None
    fingerprint: str | None = None
    # the primary head's scores (single-target cells: exactly the keys of the record before heads existed)
    metrics: dict[str, Any] = Field(default_factory=dict)
    class_names: list[str] | None = None
    unit: str | None = None
    baseline: dict[str, Any] | None = None
    beats_baseline: bool | None = None
    sigma_net: dict[str, float] | None = None
    heads: dict[str, HeadResult] = Field(default_factory=dict)
    # protocol extras
    folds: list[dict[str, Any]] | None = None
    fold_scores: list[float] | None = None
    fold_summary: dict[str, Any] | None = None
    members: list[dict[str, Any]] | None = None
    member_weights: str | None = None
    combine_weights: list[float] | None = None
    oob: dict[str, Any] | None = None
    threshold: dict[str, Any] | None = None
    #: protocol.recalibrate: the calibration split {"fraction", "n_fit", "n_calibration", "stratified_on",
    #: "seed", "headline": "raw", "skipped": {head: why}}; n_train stays the whole training split
    calibration: dict[str, Any] | None = None

    @property
    def primary(self) -> str | None:
        """The first head's name (the target the top-level scores are of)."""
        return next(iter(self.heads), None)

    def set_heads(self, heads: dict[str, HeadResult]) -> CellResult:
        """Store the heads and copy the primary head's scores to the top level."""
        self.heads = dict(heads)
        first = next(iter(self.heads.values()))
        self.task = first.task
        self.metrics = first.metrics
        if first.task == "classification":
            self.class_names = first.class_names
        else:
            self.unit = first.unit
        self.baseline, self.beats_baseline = first.baseline, first.beats_baseline
        if first.sigma_net is not None:
            self.sigma_net = first.sigma_net
        return self

    def to_record(self, curves: bool = True) -> dict[str, Any]:
        """The plain JSON record (``cells/<cell>.json``; with ``curves=False`` the per-object ROC arrays are
        left out, as ``results.json`` has them)."""
        data = self.model_dump(mode="json", exclude_unset=True)
        if not curves:
            for head in data.get("heads", {}).values():
                head.get("curves", {}).pop("roc", None)
        return data


class TargetSummary(BaseModel):
    """One target of a dataset: kind, classes or unit, and its counts in the training and test files."""

    name: str
    kind: Literal["class", "regression"]
    class_names: list[str] = Field(default_factory=list)
    unit: str = ""
    train_counts: dict[str, int] = Field(default_factory=dict)  # per class (class targets)
    test_counts: dict[str, int] | None = None
    n_train_valid: int = 0  # objects where the target applies (not NaN / -1)
    n_test_valid: int | None = None


class DatasetSummary(BaseModel):
    """A loaded dataset: source, size of its training file (and of the source's own test file) and targets."""

    name: str
    source: str
    n_train: int
    n_test: int | None = None  # the source's own test split; None when the test objects are split off
    targets: list[TargetSummary]

    @property
    def primary(self) -> TargetSummary:
        return self.targets[0]


class DataSummary(BaseModel):
    """What the report says about the data: one entry per dataset that was loaded (skipped ones are absent)."""

    datasets: list[DatasetSummary] = Field(default_factory=list)

    def get(self, name: str) -> DatasetSummary | None:
        return next((d for d in self.datasets if d.name == name), None)
