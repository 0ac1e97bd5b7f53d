"""Turn benchmark cell records into tables, plots, ``results.json`` and ``report.md``/``.html``.

Tables follow the studies' published forms: a model x (representation-dataset) accuracy grid with the
average and variance across models per column (Table 1 and Table 2 of AstroSpectra-MNIST, classical
and deep models apart), per-class F1, and for the k-fold protocol the per-model training loss,
validation loss and validation accuracy over folds beside the test metrics of the fold ensemble.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def _column_name(rec: dict[str, Any]) -> str:
    return f"{rec['representation']}-{rec['dataset']}"


def _headline(rec: dict[str, Any]) -> float:
    m = rec["metrics"]
    return m["accuracy"] if rec["task"] == "classification" else m["rmse"]


def _small(v: float) -> str:
    """A variance: five decimals, or two significant digits when five decimals would show 0.00000."""
    return f"{v:.5f}" if v == 0 or v >= 5e-6 else f"{v:.1e}"


def protocol_sentence(protocol: Any) -> str:
    """One sentence saying how the models were trained and where the numbers come from."""
    if protocol.kind == "cv":
        text = (f"Protocol: stratified {protocol.k}-fold cross-validation over all objects (a fresh model per "
                "fold; accuracy is the mean ± standard deviation over folds, per-class metrics and confusion "
                "matrices pool the out-of-fold predictions; n_train and n_test count all objects, each in the "
                f"training part of {protocol.k - 1} folds and tested once)")
    elif protocol.kind == "kfold_ensemble":
        text = (f"Protocol: a stratified test split of {protocol.test_fraction:g} left untouched; stratified "
                f"{protocol.k}-fold cross-validation on the training split with a fresh model per fold; the fold "
                "models averaged as an ensemble and tested once")
        if protocol.threshold != "argmax":
            text += (f"; binary decision threshold maximising {protocol.threshold} on the out-of-fold "
                     "predictions of the training split")
    elif protocol.kind == "resample_ensemble":
        text = (f"Protocol: a stratified test split of {protocol.test_fraction:g} (or the source's own test file) "
                f"left untouched; {protocol.n_members} fresh models, each on a {protocol.member_weights} draw with "
                "replacement of the training split, their ensemble tested once")
    elif protocol.kind == "pretrain_probe":
        text = (f"Protocol: a stratified test split of {protocol.test_fraction:g} (or the source's own test file) "
                "left untouched; each model trained by its own objective on the training split's inputs alone "
                f"(no target read), frozen, and a {protocol.probe} probe fitted on its embeddings of the training "
                "split; the pair tested once")
    else:
        text = (f"Protocol: holdout, a stratified test split of {protocol.test_fraction:g} (or the source's own "
                "test file)")
    return text + (f"; seeds {protocol.seeds} (a seed sets the split or folds, unless the source has its own "
                   "test file, and the models' random state).")


def flat_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per cell with the headline metrics (for CSV/Parquet and the detail table)."""
    rows = []
    for r in records:
        m = r["metrics"]
        row = {k: r[k] for k in ("dataset", "representation", "model", "family", "seed", "n_train", "n_test")}
        if r["task"] == "classification":
            ci = m["ci95"]
            row.update(accuracy=m["accuracy"], accuracy_lo=ci["accuracy"][0], accuracy_hi=ci["accuracy"][1],
                       balanced_accuracy=m["balanced_accuracy"], balanced_accuracy_lo=ci["balanced_accuracy"][0],
                       balanced_accuracy_hi=ci["balanced_accuracy"][1], macro_f1=m["macro_f1"], roc_auc=m.get("roc_auc"))
        else:
            row.update(rmse=m["rmse"], mae=m["mae"], r2=m["r2"], sigma=m.get("sigma"))
            if "nll" in m:  # a model that predicts its uncertainty: how honest it is
                row.update(nll=m["nll"], coverage_68=m["coverage_68"], coverage_95=m["coverage_95"])
        # the trivial baseline on the same test objects (training majority class / training mean); cells
        # written before baselines existed have none (empty)
        base = r.get("baseline")
        key = "balanced_accuracy" if r["task"] == "classification" else "rmse"
        row.update(baseline=None if base is None else base["metrics"][key], beats_baseline=r.get("beats_baseline"))
        row.update(fit_seconds=r.get("fit_seconds"), n_parameters=r.get("n_parameters"),
                   n_members=r.get("n_members", 1))
        row.update(_other_head_columns(r))
        rows.append(row)
    return rows


#: the columns of ``results.csv`` for each head after the first of a cell with several heads
_HEAD_COLUMNS = {"classification": ("accuracy", "balanced_accuracy", "macro_f1"),
                 "regression": ("rmse", "mae", "nmad", "nll", "coverage_68", "coverage_95", "mean_sigma")}


def _other_head_columns(r: dict[str, Any]) -> dict[str, Any]:
    """``<head>_<metric>`` of every head but the primary one (none for a single-target cell)."""
    out: dict[str, Any] = {}
    for name, h in list((r.get("heads") or {}).items())[1:]:
        out.update({f"{name}_{k}": h["metrics"].get(k) for k in _HEAD_COLUMNS[h["task"]]})
        out[f"{name}_beats_baseline"] = h.get("beats_baseline")  # a head worse than its baseline: False
        if h.get("sigma_net"):
            out[f"{name}_sigma_net"] = h["sigma_net"]["mean"]
    return out


def baseline_section(rep: Any, records: list[dict[str, Any]], where: str) -> None:
    """The trivial baseline of every cell (training majority class / training mean, scored on the same
    test objects) beside the cell's own score, and a warning listing the cells that do not beat it."""
    from astromodal.evaluation.benchmark import baseline_text

    recs = [r for r in records if r.get("baseline")]
    if not recs:
        return
    rep.heading("Trivial baseline", 2)
    rep.paragraph(f"Each cell against the trivial baseline fitted on its own training objects and scored {where}: "
                  "classification always predicts the training split's majority class (scored by balanced "
                  "accuracy, where it is at chance level), regression the training mean (scored by RMSE). "
                  "`beats_baseline` is False for a cell that is not strictly better.")
    rows = []
    for r in _per_head(recs):
        b, m = r["baseline"], r["metrics"]
        cls = r["task"] == "classification"
        key = "balanced_accuracy" if cls else "rmse"
        rows.append({"cell": r["cell"], "task": r["task"],
                     "baseline": f"{b['value']}" if cls else "training mean",
                     "metric": key, "model": m[key], "baseline score": b["metrics"][key],
                     "beats_baseline": "yes" if r.get("beats_baseline") else "**NO**"})
    rep.table(rows, ["cell", "task", "baseline", "metric", "model", "baseline score", "beats_baseline"])
    losers = [r for r in _per_head(recs) if not r.get("beats_baseline")]
    if losers:
        rep.paragraph(f"**Warning: {len(losers)} cell(s) do not beat the trivial baseline:** "
                      + "; ".join(baseline_text(r) for r in losers) + ".")


def _per_head(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records as they are, a cell with several heads as one record per head (``cell (head)``)."""
    out = []
    for r in records:
        heads = r.get("heads") or {}
        if len(heads) < 2:
            out.append(r)
            continue
        out += [{**r, **{k: h.get(k) for k in ("task", "metrics", "baseline", "beats_baseline")},
                 "cell": f"{r['cell']} ({name})"} for name, h in heads.items() if h.get("baseline")]
    return out


def grid_table(records: list[dict[str, Any]], family: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """Model x column table of the headline metric (mean over seeds or folds, '± std' when several),
    with the average and variance across models per column (as Table 1 of study A)."""
    recs = [r for r in records if family is None or r["family"] == family]
    if not recs:
        return [], []
    columns = list(dict.fromkeys(_column_name(r) for r in recs))
    values: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in recs:  # cross-validation cells contribute their fold scores, others one value per seed
        values[r["model"]][_column_name(r)].extend(r.get("fold_scores") or [_headline(r)])
    rows = []
    per_column: dict[str, list[float]] = defaultdict(list)
    for model, cols in values.items():
        row: dict[str, Any] = {"model": model}
        for c in columns:
            v = cols.get(c)
            if not v:
                row[c] = ""
                continue
            mean = float(np.mean(v))
            per_column[c].append(mean)
            row[c] = f"{mean:.3f}" + (f" ± {np.std(v, ddof=1):.3f}" if len(v) > 1 else "")
        rows.append(row)
    rows.append({"model": "**average**", **{c: f"{np.mean(per_column[c]):.3f}" for c in columns if per_column[c]}})
    rows.append({"model": "**variance**", **{c: _small(np.var(per_column[c])) for c in columns if per_column[c]}})
    return rows, ["model", *columns]


def kfold_table(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Per model: fold train/validation loss and validation accuracy (mean ± std) + ensemble test metrics."""
    rows = []
    for r in records:
        folds = r.get("folds") or []
        row: dict[str, Any] = {"model": r["model"], "dataset": r["dataset"], "representation": r["representation"]}
        for key in ("train_loss", "val_loss", "val_accuracy"):
            vals = [f[key] for f in folds if f.get(key) is not None]
            row[key] = f"{np.mean(vals):.4f} ± {np.std(vals):.4f}" if vals else "n/a"
        m = r["metrics"]
        thr = r.get("threshold")
        row["threshold"] = f"{thr['value']:.3f} ({thr['rule']})" if thr else "argmax"
        if r["task"] == "classification":
            auc = m.get("roc_auc")
            lo, hi = m["ci95"]["balanced_accuracy"]
            row.update(test_accuracy=f"{m['accuracy']:.4f}",
                       test_balanced_accuracy=f"{m['balanced_accuracy']:.4f} [{lo:.3f}, {hi:.3f}]",
                       test_f1=f"{_binary_or_macro_f1(r):.4f}", test_roc_auc="n/a" if auc is None else f"{auc:.4f}")
        rows.append(row)
    cols = ["model", "dataset", "representation", "train_loss", "val_loss", "val_accuracy", "threshold",
            "test_accuracy", "test_balanced_accuracy", "test_f1", "test_roc_auc"]
    return rows, cols


def resample_table(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Per resample_ensemble cell: members, their draw weights, the out-of-bag score and, for a Gaussian
    regression head, the mean sigma_net (spread of the member means) on the test split."""
    rows = []
    for r in records:
        oob = r.get("oob") or {}
        score = oob.get("score")
        net = (r.get("sigma_net") or {}).get("mean")
        if net is None:  # several heads: the first head with a sigma_net (a Gaussian head after a class head)
            net = next(((h["sigma_net"] or {}).get("mean") for h in (r.get("heads") or {}).values()
                        if h.get("sigma_net")), None)
        rows.append({"model": r["model"], "dataset": r["dataset"], "representation": r["representation"],
                     "n_members": r.get("n_members"), "member_weights": r.get("member_weights", ""),
                     "oob": f"{oob.get('metric', '')} {score:.4f}" if score is not None else "n/a",
                     "sigma_net": "n/a" if net is None else f"{net:.4g}"})
    return rows, ["model", "dataset", "representation", "n_members", "member_weights", "oob", "sigma_net"]


def probe_table(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """Per pretrain_probe cell: the probe, its headline score on the test split, and the cross-modal
    retrieval of the two embeddings (top-1 / top-5 in both directions, beside chance)."""
    rows = []
    for r in records:
        ret = r.get("retrieval") or {}
        a, b = ret.get("pair") or ("a", "b")
        row = {"model": r["model"], "dataset": r["dataset"], "representation": r["representation"],
               "probe": (r.get("probe") or {}).get("model", ""),
               "score": f"{'accuracy' if r['task'] == 'classification' else 'rmse'} {_headline(r):.4f}"}
        for k in (1, 5):
            if f"top{k}_{a}_to_{b}" in ret:
                row[f"top-{k} {a}->{b}"] = f"{ret[f'top{k}_{a}_to_{b}']:.3f}"
                row[f"top-{k} {b}->{a}"] = f"{ret[f'top{k}_{b}_to_{a}']:.3f}"
                row[f"chance top-{k}"] = f"{ret[f'chance_top{k}']:.3f}"
        rows.append(row)
    return rows, list(dict.fromkeys(k for row in rows for k in row))


def _binary_or_macro_f1(r: dict[str, Any]) -> float:
    m = r["metrics"]
    names = r.get("class_names") or []
    if len(names) == 2:
        return float(m["per_class"][names[1]]["f1"])
    return float(m["macro_f1"])


def per_class_table(records: list[dict[str, Any]], dataset: str) -> tuple[list[dict[str, Any]], list[str]]:
    recs = [r for r in records if r["dataset"] == dataset and r["task"] == "classification" and r["seed"] == records[0]["seed"]]
    if not recs:
        return [], []
    names = recs[0]["class_names"]
    rows = []
    for r in recs:
        row = {"model": r["model"], "representation": r["representation"]}
        for n in names:
            row[f"F1 {n}"] = f"{r['metrics']['per_class'][n]['f1']:.3f}"
        rows.append(row)
    return rows, ["model", "representation", *[f"F1 {n}" for n in names]]


@dataclass
class EmbeddingSet:
    """The training inputs of one representation of one dataset, for a PCA / t-SNE map coloured by class."""

    dataset: str
    representation: str
    X: np.ndarray  # (N, D) flattened inputs
    labels: np.ndarray  # class codes
    class_names: list[str]


@dataclass
class ReportContext:
    """What a report hook reads (``hook(report, context)``): never the runner."""

    out: Path
    config: Any  # ExperimentConfig
    results: list[dict[str, Any]]  # the cell records
    data: Any  # DataSummary
    datasets: Mapping[str, Any] = field(default_factory=dict)  # name -> the loaded training Dataset


def write_benchmark_report(results: Sequence[Any], data: Any, config: Any, out: Path, command: str,
                           notes: Sequence[str] = (), hooks: Sequence[Any] = (),
                           embeddings: Sequence[EmbeddingSet] = (),
                           datasets: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write ``results.json``, ``results.csv`` / ``.parquet``, the figures and ``report.md`` / ``.html`` into
    ``out`` from the cell results (:class:`~astromodal.evaluation.results.CellResult` or their records) and a
    :class:`~astromodal.evaluation.results.DataSummary`; ``hooks`` (``f(report, ReportContext)``) add
    sections before it is written; ``embeddings`` are the inputs of the PCA / t-SNE maps. Returns the
    ``results.json`` content."""
    from astromodal.evaluation.report import Report

    out = Path(out)
    records = [_as_record(r) for r in results]
    (out / "figures").mkdir(parents=True, exist_ok=True)
    rep = Report(f"astromodal benchmark: {config.name}")
    _intro(rep, config, command, notes, records)
    _data_section(rep, data, config)
    # a sweep's variants: every cell in "All cells" and the sweep's own table, no other table or figure each
    main = _main_records(records, config)
    _main_tables(rep, main, config)
    extra: dict[str, Any] = {}
    if getattr(config.report, "comparisons", None):  # the study's questions, answered with intervals
        extra["comparisons"] = _comparison_sections(rep, records, config, out, datasets)
    _cells_table(rep, records, config, out)
    _head_sections(rep, main)
    _class_tables(rep, main, config)
    _radius_section(rep, main, config, out)
    grids = _sweep_sections(rep, records, config, out)
    if grids:
        extra["grids"] = grids
    cv = config.protocol.kind == "cv"
    baseline_section(rep, records, "on the same pooled out-of-fold predictions" if cv else "on the same test split")
    _confusion_figures(rep, main, config, out)
    _roc_figures(rep, main, config, out)
    _pit_figures(rep, main, config, out)
    _calibration(rep, main, out)
    _image_grid(rep, config, dict(datasets or {}), out)
    _embedding_figures(rep, embeddings, config, out)
    _joint_embedding_figures(rep, main, config, out)
    if getattr(config.report, "exploratory", None) is not None:
        extra["exploratory"] = exploratory_section(rep, config, dict(datasets or {}), out)
    summary = _write_results(out, records, config, command, notes, extra)
    context = ReportContext(out, config, summary["cells"], data, dict(datasets or {}))
    for hook in hooks:
        hook(rep, context)
    rep.write(out)
    return summary


def _as_record(result: Any) -> dict[str, Any]:
    """A cell's plain record (a CellResult's, or a record as it is)."""
    return result.to_record() if hasattr(result, "to_record") else dict(result)


def _intro(rep: Any, config: Any, command: str, notes: Sequence[str], records: list[dict[str, Any]]) -> None:
    if config.description:
        rep.paragraph(config.description)
    rep.heading("Reproduce", 2)
    rep.code(command)
    for note in notes:
        rep.paragraph(f"Note: {note}")
    if not records:
        rep.paragraph("No cell was run (every dataset was skipped).")


def _counts(c: dict[str, int] | None) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in c.items()) if c else "n/a"


def _data_section(rep: Any, data: Any, config: Any) -> None:
    """One row per dataset (per dataset and target with several targets): objects and classes of the
    training file and of the source's own test file (a test class unseen in training shows here)."""
    rep.heading("Data", 2)
    rows = []
    cv = config.protocol.kind == "cv"
    for d in data.datasets:
        # without a test file the test objects are a split of the training ones (counted before the split)
        if d.n_test is not None:
            n_train, n_test = f"{d.n_train:,}", f"{d.n_test:,}" + (" (not used under cv)" if cv else "")
        else:
            n_train = f"{d.n_train:,} (before the split)"
            n_test = "each one, out of fold" if cv else f"a stratified {config.protocol.test_fraction:g} of them"
        for t in d.targets:
            row = {"dataset": d.name, "source": d.source, "target": t.name, "kind": t.kind,
                   "train objects": n_train, "train classes": _counts(t.train_counts), "test objects": n_test,
                   "test classes": _counts(t.test_counts) if d.n_test is not None else ""}
            if len(d.targets) > 1:  # several targets: the objects where each applies
                row["train objects"] = f"{t.n_train_valid:,} of {n_train}"
                if t.n_test_valid is not None:
                    row["test objects"] = f"{t.n_test_valid:,} of {n_test}"
                if t.kind != "class":
                    row["train classes"] = f"unit {t.unit}" if t.unit else ""
                    row["test classes"] = row["train classes"] if d.n_test is not None else ""
            rows.append(row)
    if rows:
        rep.table(rows, ["dataset", "source", "target", "kind", "train objects", "train classes", "test objects",
                         "test classes"])
    rep.paragraph(protocol_sentence(config.protocol))
    _protocol_overrides(rep, config)


def _main_tables(rep: Any, records: list[dict[str, Any]], config: Any) -> None:
    """The protocol's own table (k-fold, resample) and the headline grid (Table 1 / 2 of study A)."""
    metric_name = "accuracy" if all(r["task"] == "classification" for r in records) else "RMSE (classification: accuracy)"
    where = "mean ± std over the cross-validation folds" if config.protocol.kind == "cv" else "on the test split"
    if config.protocol.kind == "kfold_ensemble":
        rows, cols = kfold_table(records)
        rep.heading("Results per model (k-fold training, ensemble on the test split)", 2)
        rep.table(rows, cols)
    resampled = [r for r in records if r.get("oob") is not None]  # resample_ensemble cells (the config's or a model's own)
    if config.protocol.kind == "resample_ensemble" or resampled:
        rows, cols = resample_table(resampled if config.protocol.kind != "resample_ensemble" else records)
        rep.heading("Resample ensembles (out-of-bag score on the training split; sigma_net on the test split)", 2)
        rep.table(rows, cols)
    probed = [r for r in records if r.get("probe") is not None]  # pretrain_probe cells (the config's or a model's own)
    if probed:
        rows, cols = probe_table(probed)
        rep.heading("Probes of the frozen embeddings (score and cross-modal retrieval on the test split)", 2)
        rep.table(rows, cols)
    if config.report.tables == "astrospectra":
        for title, fam in (("Table 1: classical models", "classical"), ("Table 2: deep models", "neural")):
            rows, cols = grid_table(records, fam)
            if rows:
                rep.heading(f"{title} ({metric_name}, {where})", 2)
                rep.table(rows, cols)
    else:
        rows, cols = grid_table(records)
        if rows:
            rep.heading(f"{metric_name.capitalize()} per model ({where})", 2)
            rep.table(rows, cols)


def _cells_table(rep: Any, records: list[dict[str, Any]], config: Any, out: Path) -> None:
    """Every cell's headline scores (also ``results.csv`` / ``.parquet``) and the per-class F1 tables."""
    flat = flat_rows(records)
    if not flat:
        return
    rep.heading("All cells", 2)
    if any("accuracy_lo" in row for row in flat):
        rep.paragraph("`_lo` / `_hi`: the 95 % bootstrap interval (2,000 resamples of the "
                      + ("pooled out-of-fold predictions" if config.protocol.kind == "cv" else "test objects") + ").")
    rep.table(flat, list(dict.fromkeys(k for row in flat for k in row)))
    frame = pd.DataFrame(flat)
    frame.to_csv(out / "results.csv", index=False)
    frame.to_parquet(out / "results.parquet", index=False)
    for name in config.datasets:
        rows, cols = per_class_table(records, name)
        if rows:
            rep.heading(f"Per-class F1: {name}", 3)
            rep.table(rows, cols)


def _several_heads(records: list[dict[str, Any]]) -> list[str]:
    """The head names of the cells that have more than one head (first-seen order)."""
    return list(dict.fromkeys(h for r in records if len(r.get("heads") or {}) > 1 for h in r["heads"]))


def head_table(records: list[dict[str, Any]], head: str) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per cell with head ``head``: classification accuracy, balanced accuracy, macro F1 and
    per-class F1; regression RMSE, MAE, NMAD, bias, NLL, 68 / 95 % coverage, mean sigma and sigma_net."""
    rows = []
    for r in records:
        h = (r.get("heads") or {}).get(head)
        if h is None:
            continue
        m = h["metrics"]
        row: dict[str, Any] = {"model": r["model"], "dataset": r["dataset"], "representation": r["representation"],
                               "seed": r["seed"], "n": h.get("n")}
        if h["task"] == "classification":
            row.update(accuracy=m["accuracy"], balanced_accuracy=m["balanced_accuracy"], macro_f1=m["macro_f1"])
            row.update({f"F1 {c}": v["f1"] for c, v in m["per_class"].items()})
        else:
            row.update({k: m.get(k) for k in ("rmse", "mae", "nmad", "bias", "nll", "coverage_68", "coverage_95",
                                              "mean_sigma")})
            row["sigma_net"] = (h.get("sigma_net") or {}).get("mean")
        row["beats_baseline"] = "yes" if h.get("beats_baseline") else "**NO**"
        rows.append(row)
    return rows, list(dict.fromkeys(k for row in rows for k in row))


def loss_table(records: list[dict[str, Any]], heads: list[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Per cell, each head's part of the training and validation loss (``loss_<head>``): at the last epoch
    of its history, or the mean over its folds / members."""
    keys = [f"{split}_loss_{h}" for h in heads for split in ("train", "val")]
    rows = []
    for r in records:
        entries = [r["history"][-1]] if r.get("history") else [*(r.get("folds") or []), *(r.get("members") or [])]
        row: dict[str, Any] = {"model": r["model"], "dataset": r["dataset"], "representation": r["representation"]}
        for k in keys:
            vals = [e[k] for e in entries if isinstance(e.get(k), (int, float))]
            if vals:
                row[k.replace("train_loss_", "train loss_").replace("val_loss_", "val loss_")] = float(np.mean(vals))
        if len(row) > 3:
            rows.append(row)
    return rows, list(dict.fromkeys(k for row in rows for k in row))


def _head_sections(rep: Any, records: list[dict[str, Any]]) -> None:
    """For cells with several heads: a table per head and the per-head parts of the loss."""
    heads = _several_heads(records)
    if not heads:
        return
    rep.heading("Results per head", 2)
    rep.paragraph("Each head scored on the test objects where its target applies (`n`; a NaN or missing target "
                  "is left out), against its own trivial baseline.")
    for head in heads:
        rows, cols = head_table(records, head)
        if rows:
            rep.heading(f"Head: {head}", 3)
            rep.table(rows, cols, floatfmt=".4f")
    rows, cols = loss_table(records, heads)
    if rows:
        rep.heading("Loss per head (loss_<head>)", 3)
        rep.table(rows, cols, floatfmt=".4f")


def _figure_name(kind: str, r: dict[str, Any], head: str, primary: str | None) -> str:
    suffix = "" if head == primary else f"_{head}"
    return f"{kind}_{r['dataset']}_{r['representation']}_{r['model']}{suffix}.png"


def _heads_of(r: dict[str, Any], task: str) -> list[tuple[str, dict[str, Any]]]:
    """``(name, head record)`` of a cell's heads of ``task`` (a cell without heads: its top-level scores)."""
    heads = r.get("heads") or {"": {"task": r["task"], "metrics": r["metrics"], "class_names": r.get("class_names")}}
    return [(n, h) for n, h in heads.items() if h["task"] == task]


def _confusion_figures(rep: Any, records: list[dict[str, Any]], config: Any, out: Path) -> None:
    from astromodal.evaluation import plots

    if not config.report.confusion_matrices:
        return
    pooled = "out-of-fold predictions" if config.protocol.kind == "cv" else "test split"
    cm_recs = [r for r in records if r["seed"] == config.protocol.seeds[0] and _heads_of(r, "classification")]
    if cm_recs:
        rep.heading(f"Confusion matrices ({pooled}, rows = true class)", 2)
    for r in cm_recs:
        primary = next(iter(r.get("heads") or {""}))
        for name, h in _heads_of(r, "classification"):
            path = out / "figures" / _figure_name("cm", r, name, primary)
            what = f"{r['model']} | {r['representation']}-{r['dataset']}" + ("" if name == primary else f" | {name}")
            plots.plot_confusion_matrix(np.asarray(h["metrics"]["confusion_matrix"]), h["class_names"], path,
                                        title=what)
            rep.image(path.relative_to(out), f"{r['model']} on {r['representation']}-{r['dataset']}"
                      + ("" if name == primary else f" ({name})"))


def _roc_figures(rep: Any, records: list[dict[str, Any]], config: Any, out: Path) -> None:
    from astromodal.evaluation import plots

    if not config.report.roc_curves:
        return
    items = [(r, n, h) for r in records if r["seed"] == config.protocol.seeds[0]
             for n, h in (r.get("heads") or {}).items() if (h.get("curves") or {}).get("roc")]
    if items:
        rep.heading(f"ROC curves ({'out-of-fold predictions' if config.protocol.kind == 'cv' else 'test split'})", 2)
    for r, name, h in items:
        primary = next(iter(r["heads"]))
        roc = h["curves"]["roc"]
        proba = np.asarray(roc["proba"])
        path = out / "figures" / _figure_name("roc", r, name, primary)
        plots.plot_roc(np.asarray(roc["y_true"]), np.stack([1 - proba, proba], axis=1), h["class_names"], path)
        rep.image(path.relative_to(out), f"ROC: {r['model']} on {r['representation']}-{r['dataset']}"
                  + ("" if name == primary else f" ({name})"))


def plot_pit(pit: dict[str, Any], path: Path, title: str = "") -> Path:
    """The PIT histogram (fraction of objects per bin) against the uniform line of honest uncertainties."""
    from astromodal.evaluation.plots import _figure, _save

    edges, frac = np.asarray(pit["edges"]), np.asarray(pit["fraction"])
    fig = _figure(4.5, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(edges[:-1], frac, width=np.diff(edges), align="edge", color="#4c72b0", edgecolor="white")
    ax.axhline(1.0 / len(frac), color="k", ls="--", lw=1, label="uniform (honest sigmas)")
    ax.set_xlim(0, 1)
    ax.set_xlabel("PIT = Phi((y - mu) / sigma)")
    ax.set_ylabel("fraction of objects")
    ax.set_title(title or f"PIT histogram (n = {pit['n']})", fontsize=9)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _pit_figures(rep: Any, records: list[dict[str, Any]], config: Any, out: Path) -> None:
    """The PIT histogram of every Gaussian head with a predicted variance (first seed)."""
    items = [(r, n, h) for r in records if r["seed"] == config.protocol.seeds[0]
             for n, h in (r.get("heads") or {}).items() if (h.get("curves") or {}).get("pit")]
    if not items:
        return
    rep.heading("PIT histograms (uniform when the predicted uncertainties are honest)", 2)
    for r, name, h in items:
        path = out / "figures" / _figure_name("pit", r, name, None)
        plot_pit(h["curves"]["pit"], path, f"{r['model']} | {r['representation']}-{r['dataset']} | {name}")
        rep.image(path.relative_to(out), f"PIT: {r['model']} on {r['representation']}-{r['dataset']} ({name})")


def _embedding_figures(rep: Any, embeddings: Sequence[EmbeddingSet], config: Any, out: Path) -> None:
    from astromodal.evaluation import plots

    if not embeddings or not config.report.embeddings:
        return
    rep.heading("Embeddings of the data" if config.protocol.kind == "cv" else "Embeddings of the training data", 2)
    for e in embeddings:
        for method in config.report.embeddings:
            path = out / "figures" / f"{method}_{e.representation}_{e.dataset}.png"
            plots.plot_embedding(e.X, e.labels, e.class_names, path, method=method, seed=0)
            rep.image(path.relative_to(out), f"{method.upper()} of {e.representation}-{e.dataset}")


def _joint_embedding_figures(rep: Any, records: list[dict[str, Any]], config: Any, out: Path) -> None:
    """For each contrastive cell (``pretrain_probe``, first seed): the t-SNE (or the first of
    ``report.embeddings``) of its frozen joint space on the TEST objects, the per-input embeddings
    L2-normalised (as the InfoNCE compares them) and laid side by side, coloured by the primary target."""
    from astromodal.evaluation import plots

    seed = config.protocol.seeds[0]
    method = (config.report.embeddings or ["tsne"])[0]
    cells = [r for r in records if r.get("probe") and r["seed"] == seed]
    shown = False
    for r in cells:
        pred = _predictions(out, r)
        emb = (pred or {}).get("embeddings") or {}
        if not emb:
            continue
        head = next(iter(pred["heads"]), None)
        truth = pred["heads"].get(head, {}).get("truth") if head else None
        if truth is None or pred["kinds"].get(head) == "categorical":  # a class target: the probe table says it
            continue
        parts = [np.asarray(z, dtype=np.float64) for z in emb.values()]
        parts = [z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12) for z in parts]
        if not shown:
            rep.heading("Joint embedding of the contrastive model (test objects)", 2)
            shown = True
        what = f"{r['model']} | {r['representation']}-{r['dataset']}"
        path = out / "figures" / f"joint_{method}_{r['cell']}.png"
        plots.plot_embedding_values(np.concatenate(parts, axis=1), truth, path, method=method, seed=0,
                                    label=head or "target", title=f"{method.upper()} of the joint space: {what}")
        rep.image(path.relative_to(out), f"{method.upper()} of the frozen {' + '.join(emb)} embeddings of {what}, "
                                         f"coloured by {head}")


def _write_results(out: Path, records: list[dict[str, Any]], config: Any, command: str,
                   notes: Sequence[str], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``results.json``: the run's settings and every cell (without the per-object ROC arrays), and when
    configured ``comparisons`` (one entry per comparison and dataset, :func:`run_comparison`), ``grids``
    (sweep name -> :func:`grid_summary`) and ``exploratory`` (dataset -> figures and counts)."""
    from astromodal.atomic import write_json
    from astromodal.evaluation.results import CellResult

    cells = []
    for r in records:
        try:
            cells.append(CellResult.model_validate(r).to_record(curves=False))
        except ValueError:  # a record that is not a cell result (a report of hand-made records)
            cells.append({k: v for k, v in r.items() if not k.startswith("_")})
    results = {"name": config.name, "study": config.study, "command": command,
               "protocol": config.protocol.model_dump(), "notes": list(notes), "cells": cells}
    own = {m.label or m.name: config.protocol_for(m).model_dump() for m in getattr(config, "models", [])
           if getattr(m, "protocol", None) is not None}
    if own:  # model entries with a protocol of their own (only then: results.json as before otherwise)
        results["model_protocols"] = own
    results.update(extra or {})
    write_json(out / "results.json", results)
    return results


# ---------------------------------------------------------------------- study B (MESCR) sections
def _sweep_cell(config: Any, r: dict[str, Any]) -> tuple[str, str] | None:
    """``(sweep, value)`` of a sweep variant's cell (None for a cell of the config's own entries)."""
    fn = getattr(config, "sweep_of", None)
    return None if fn is None else fn(model=r["model"], representation=r["representation"])


def _main_records(records: list[dict[str, Any]], config: Any) -> list[dict[str, Any]]:
    """The cells of the config's own model entries and representations (not a sweep's variants)."""
    return [r for r in records if _sweep_cell(config, r) is None]


def _head_record(r: dict[str, Any], task: str) -> tuple[str, dict[str, Any]] | None:
    """The first head of ``task`` of a cell (its top-level scores for a cell without heads)."""
    heads = _heads_of(r, task)
    if not heads:
        return None
    name, h = heads[0]
    return (name or r.get("target") or "", h)


def table1_rows(metrics: Mapping[str, Any], class_names: Sequence[str]) -> list[dict[str, Any]]:
    """MESCR's Table 1 form for one class head: per class F1, recall, precision and the number of test
    objects (``metrics["per_class"]``: scikit-learn's precision = TP / predicted, recall = TP / true), then
    the macro average and the accuracy."""
    pc = metrics["per_class"]
    rows = [{"class": c, "F1": pc[c]["f1"], "recall": pc[c]["recall"], "precision": pc[c]["precision"],
             "count": int(pc[c]["support"])} for c in class_names if c in pc]
    n = sum(row["count"] for row in rows)
    rows.append({"class": "**macro**", "F1": float(np.mean([row["F1"] for row in rows])),
                 "recall": float(np.mean([row["recall"] for row in rows])),
                 "precision": float(np.mean([row["precision"] for row in rows])), "count": n})
    rows.append({"class": "**accuracy**", "F1": metrics["accuracy"], "recall": None, "precision": None, "count": n})
    return rows


def _has_table1(metrics: Mapping[str, Any]) -> bool:
    """True when every class of ``metrics["per_class"]`` has F1, recall, precision and support."""
    pc = metrics.get("per_class") or {}
    return bool(pc) and all({"f1", "recall", "precision", "support"} <= set(v) for v in pc.values())


def _class_tables(rep: Any, records: list[dict[str, Any]], config: Any) -> None:
    """Per cell of the config's own entries (first seed) and class head: the Table 1 form."""
    seed = config.protocol.seeds[0]
    items = [(r, n, h) for r in _main_records(records, config) if r["seed"] == seed
             for n, h in _heads_of(r, "classification") if _has_table1(h["metrics"])]
    wanted = getattr(config.report, "per_class_tables", None)
    if not items or wanted is False or (wanted is None and len(items) > 12):
        return
    where = "the pooled out-of-fold predictions" if config.protocol.kind == "cv" else "the test split"
    rep.heading(f"Per-class scores on {where} (Table 1 form)", 2)
    rep.paragraph("Per class: F1, recall (the fraction of the class's scored objects given that class), precision "
                  "(the fraction of the objects given that class that have it) and the number of scored objects.")
    for r, name, h in items:
        rep.heading(f"{r['model']} | {r['representation']}-{r['dataset']}" + (f" | {name}" if name else ""), 3)
        rep.table(table1_rows(h["metrics"], h.get("class_names") or list(h["metrics"]["per_class"])),
                  ["class", "F1", "recall", "precision", "count"], floatfmt=".3f")


def _log_unit(unit: str) -> bool:
    u = (unit or "").lower()
    return "dex" in u or u.startswith("log")


def radius_metrics(y_true: Any, mean: Any, var: Any = None, sigma_net: Any = None, unit: str = "") -> dict[str, Any]:
    """The paper's radius scores of one Gaussian (or point) head on the test objects: ``mae`` and
    ``sigma`` (population std of predicted - true) in the target's unit, ``mae_dex`` = mean
    |log10 pred - log10 true| and ``sigma_dex`` (std of the log residual) over the objects where both are
    positive (``n_dex``), ``mean_sigma_pred`` = mean predicted 1-sigma (sqrt of the variance) and the mean
    ``sigma_net``. A target in dex / log units is taken as log10 already (``sigma`` is then of 10**values)."""
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(mean, dtype=np.float64).reshape(-1)
    ok = np.isfinite(t) & np.isfinite(p)
    t, p = t[ok], p[ok]
    if _log_unit(unit):
        lt, lp, lin_t, lin_p, pos = t, p, 10.0 ** t, 10.0 ** p, np.ones(len(t), bool)
    else:
        pos = (t > 0) & (p > 0)
        lt, lp, lin_t, lin_p = np.log10(t[pos]), np.log10(p[pos]), t, p
    out: dict[str, Any] = {"n": int(len(t)), "mae": float(np.mean(np.abs(lin_p - lin_t))),
                           "sigma": float(np.std(lin_p - lin_t)), "n_dex": int(pos.sum()),
                           "mae_dex": float(np.mean(np.abs(lp - lt))) if len(lt) else None,
                           "sigma_dex": float(np.std(lp - lt)) if len(lt) else None}
    if var is not None:
        v = np.asarray(var, dtype=np.float64).reshape(-1)[ok]
        s = np.sqrt(v[np.isfinite(v)])
        out["mean_sigma_pred"] = float(np.mean(s)) if len(s) else None
    if sigma_net is not None:
        out["mean_sigma_net"] = float(np.nanmean(np.asarray(sigma_net, dtype=np.float64).reshape(-1)[ok]))
    return out


def _bootstrap(values: np.ndarray, stat: Any, n: int = 1000, seed: int = 0) -> tuple[float, float] | None:
    """The 95 % bootstrap interval of ``stat`` over the objects (None for fewer than 2)."""
    if len(values) < 2:
        return None
    rng = np.random.default_rng(seed)
    draws = [stat(values[rng.integers(0, len(values), len(values))]) for _ in range(n)]
    return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))


def _predictions(out: Path, r: dict[str, Any]) -> dict[str, Any] | None:
    from astromodal.evaluation.benchmark import predictions_path, read_predictions

    return read_predictions(predictions_path(out / "cells", r["cell"]), r.get("fingerprint"))


def _gaussian_head(pred: dict[str, Any] | None, name: str) -> dict[str, np.ndarray] | None:
    if pred is None:
        return None
    heads = pred["heads"]
    h = heads.get(name) if name else next((v for k, v in heads.items() if pred["kinds"].get(k) == "gaussian"), None)
    return h if h is not None and "mean" in h else None


def _radius_rows(records: list[dict[str, Any]], out: Path) -> list[dict[str, Any]]:
    rows = []
    for r in records:
        for name, h in _heads_of(r, "regression"):
            m, unit = h["metrics"], h.get("unit") or r.get("unit") or ""
            g = _gaussian_head(_predictions(out, r), name)
            if g is not None:
                rm = radius_metrics(g["truth"], g["mean"], g.get("var"), g.get("sigma_net"), unit)
            else:  # no saved predictions: what the record holds (no dex scores)
                rm = {"n": m.get("n"), "mae": m.get("mae"), "sigma": m.get("sigma"), "mae_dex": None,
                      "sigma_dex": None, "mean_sigma_pred": m.get("mean_sigma"),
                      "mean_sigma_net": (h.get("sigma_net") or {}).get("mean")}
            rows.append({"model": r["model"], "dataset": r["dataset"], "representation": r["representation"],
                         "seed": r["seed"], "head": name or r.get("target", ""),
                         "unit": f"linear (10**{unit})" if _log_unit(unit) and g is not None else unit, **rm,
                         "nll": m.get("nll"), "coverage_68": m.get("coverage_68")})
    return rows


def _radius_section(rep: Any, records: list[dict[str, Any]], config: Any, out: Path) -> None:
    """The radius scores in the paper's terms, Figure 4a (1:1 density + residual histogram) and Figure 4b
    (sigma_pred and sigma_net against the S/N column's intervals) per Gaussian head (first seed)."""
    from astromodal.evaluation import plots

    seed = config.protocol.seeds[0]
    main = [r for r in _main_records(records, config) if r["seed"] == seed and _heads_of(r, "regression")]
    rows = _radius_rows(main, out)
    if not rows:
        return
    # MESCR's radius in its paper's terms; any other regression head (study D's log SFR) under a plain title
    radius = any("radius" in str(row.get("head", "")) for row in rows)
    rep.heading("Radius (regression heads) in the paper's terms" if radius else
                "Regression heads: MAE, sigma and 1:1 plots", 2)
    rep.paragraph("MAE and sigma (population standard deviation of predicted - true) in the target's unit, "
                  "and for a target in dex (a log10 quantity such as log_radius) of the linear quantity 10**value "
                  "(the paper's sigma in Rsun; the unit column then says 'linear'); "
                  "MAE dex = mean |log10 predicted - log10 true| and sigma dex = the standard deviation of that "
                  "log residual (objects where both are positive, n_dex); mean sigma_pred = the mean predicted "
                  "1-sigma (in the target's own unit: dex for a log target); mean sigma_net = the mean spread of "
                  "an ensemble's member means (MESCR).")
    rep.table(rows, list(dict.fromkeys(k for row in rows for k in row)), floatfmt=".4g")
    snr = getattr(config.report, "snr_column", None)
    for r in main:
        pred = _predictions(out, r)
        for name, h in _heads_of(r, "regression"):
            g = _gaussian_head(pred, name)
            if g is None:
                continue
            unit = h.get("unit") or ""
            what = f"{r['model']} | {r['representation']}-{r['dataset']}" + (f" | {name}" if name else "")
            path = out / "figures" / _figure_name("radius", r, name, None)
            plots.plot_one_to_one_density(g["truth"], g["mean"], path, unit=unit, label=name or "value", title=what)
            rep.image(path.relative_to(out), f"1:1 and residuals (Figure 4a form): {what}")
            if snr and "var" in g:
                s = pred["columns"].get(snr) if pred else None
                if s is None:
                    continue
                has = np.isfinite(np.asarray(g["truth"], dtype=float))  # the objects with the target
                net = g.get("sigma_net")
                bins = plots.snr_bins(np.asarray(s)[has], np.sqrt(np.asarray(g["var"]))[has],
                                      None if net is None else np.asarray(net)[has])
                if not bins:
                    continue
                path = out / "figures" / _figure_name("snr", r, name, None)
                plots.plot_sigma_vs_snr(bins, path, unit=unit, snr_name=snr, title=what)
                rep.image(path.relative_to(out), f"sigma_pred and sigma_net against {snr} (Figure 4b form): {what}")
                rep.table(bins, list(bins[0]), floatfmt=".4g")


def _cell_scores(r: dict[str, Any], out: Path) -> dict[str, Any]:
    """A cell's sweep-table scores: the first class head's accuracy (95 % interval) and macro F1, the first
    regression head's MAE, MAE dex (bootstrap 95 % interval, from the saved predictions) and sigma."""
    s: dict[str, Any] = {"fit_seconds": r.get("fit_seconds")}
    cls = _head_record(r, "classification")
    if cls is not None:
        m = cls[1]["metrics"]
        s.update(accuracy=m["accuracy"], accuracy_ci=(m.get("ci95") or {}).get("accuracy"), macro_f1=m["macro_f1"])
    reg = _head_record(r, "regression")
    if reg is not None:
        name, h = reg
        g = _gaussian_head(_predictions(out, r), _heads_of(r, "regression")[0][0])
        if g is not None:
            rm = radius_metrics(g["truth"], g["mean"], g.get("var"), unit=h.get("unit") or "")
            s.update(mae=rm["mae"], sigma=rm["sigma"], mae_dex=rm["mae_dex"])
            t, p = np.asarray(g["truth"], float), np.asarray(g["mean"], float)
            t, p = t[np.isfinite(t) & np.isfinite(p)], p[np.isfinite(t) & np.isfinite(p)]
            if not _log_unit(h.get("unit") or ""):
                ok = (t > 0) & (p > 0)
                t, p = np.log10(t[ok]), np.log10(p[ok])
            s["mae_dex_ci"] = _bootstrap(np.abs(p - t), np.mean)
        else:
            s.update(mae=h["metrics"].get("mae"), sigma=h["metrics"].get("sigma"), mae_dex=None)
    return s


def _with_ci(values: list[Any], cis: list[Any]) -> str:
    vals = [v for v in values if v is not None]
    if not vals:
        return ""
    if len(vals) > 1:
        return f"{np.mean(vals):.4f} ± {np.std(vals, ddof=1):.4f}"
    ci = cis[0] if cis else None
    return f"{vals[0]:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")


def sweep_rows(sweep: Any, records: list[dict[str, Any]], config: Any, out: Path) -> list[dict[str, Any]]:
    """One row per variant of ``sweep`` (and model, for a representation sweep run with several): its
    scores, with the 95 % interval of one seed or the mean ± std over seeds, and the training time."""
    rows = []
    for text, _ in sweep.points():
        label = sweep.label(text)
        mine = [r for r in records if (r["model"] if sweep.model is not None else r["representation"]) == label]
        for model in dict.fromkeys(r["model"] for r in mine):
            cells = [_cell_scores(r, out) for r in mine if r["model"] == model]
            row: dict[str, Any] = {sweep.axis: text}
            if sweep.representation is not None:
                row["model"] = model
            for key in ("accuracy", "macro_f1", "mae", "mae_dex", "sigma"):
                if any(c.get(key) is not None for c in cells):
                    row[key] = _with_ci([c.get(key) for c in cells], [c.get(f"{key}_ci") for c in cells])
            row["n_seeds"] = len(cells)
            secs = [c["fit_seconds"] for c in cells if c.get("fit_seconds") is not None]
            row["fit_seconds"] = f"{np.mean(secs):.3g}" if secs else ""
            rows.append(row)
    return rows


def _sweep_sections(rep: Any, records: list[dict[str, Any]], config: Any, out: Path) -> dict[str, Any]:
    """Per sweep: its table, and for numeric values a line figure of the scores and the training time; a
    two-axis sweep (``grid``) its heat maps (:func:`_grid_section`). Returns the grids' matrices by sweep."""
    from astromodal.evaluation import plots

    grids: dict[str, Any] = {}
    for sweep in getattr(config, "sweeps", None) or []:
        if getattr(sweep, "grid", None) is not None:
            summary = _grid_section(rep, sweep, records, out)
            if summary:
                grids[sweep.name] = summary
            continue
        rows = sweep_rows(sweep, records, config, out)
        if not rows:
            continue
        what = f"model {sweep.model!r}" if sweep.model is not None else f"representation {sweep.representation!r}"
        rep.heading(f"{sweep.title or 'Sweep'}: {sweep.name} ({sweep.axis} of {what})", 2)
        where = "Out of fold" if config.protocol.kind == "cv" else "On the test split"
        rep.paragraph(f"{where}; a value with [lo, hi]: its 95 % bootstrap interval (accuracy: of the "
                      "confusion matrix; MAE dex: of the objects); with several seeds the mean ± std over seeds. "
                      "mae and sigma as in the radius table (of 10**value for a target in dex).")
        rep.table(rows, list(dict.fromkeys(k for row in rows for k in row)))
        if not sweep.numeric():
            continue
        for model in dict.fromkeys(row.get("model") for row in rows):
            part = [row for row in rows if row.get("model") == model]
            values = [float(row[sweep.axis]) for row in part]
            series = {k: [_lead(row.get(k)) for row in part] for k in ("accuracy", "macro_f1", "mae_dex")
                      if any(row.get(k) for row in part)}
            secs = [_lead(row.get("fit_seconds")) for row in part]
            path = out / "figures" / f"sweep_{sweep.name}{'_' + model if model else ''}.png"
            positive = all(v > 0 for v in values)
            plots.plot_sweep(values, series, path, sweep.axis, seconds=secs, title=sweep.title or sweep.name,
                             log_x=positive and max(values) / min(values) >= 8)
            rep.image(path.relative_to(out), f"{sweep.title or sweep.name}: scores and training time against "
                      f"{sweep.axis}" + (f" ({model})" if model else ""))
    return grids


def _lead(text: Any) -> float | None:
    """The leading number of a table cell ('0.91 [0.88, 0.93]' -> 0.91)."""
    if text in (None, ""):
        return None
    try:
        return float(str(text).split()[0])
    except ValueError:
        return None


def _display(arr: np.ndarray, view: Any) -> np.ndarray:
    """Display images (N, H, W, 3) in [0, 1] of one input: an RGB input (3 channels in [0, 1]) as it is,
    another image input as the Lupton composite of its g, r, i bands (else its first band in grey)."""
    from astromodal.evaluation.plots import cutout_rgb

    a = np.asarray(arr, dtype=np.float64)
    if a.ndim == 4 and a.shape[1] == 3 and (getattr(view, "kind", "") == "rgb" or (a.min() >= 0 and a.max() <= 1)):
        return np.transpose(a, (0, 2, 3, 1))
    bands = list(getattr(view, "bands", None) or [str(i) for i in range(a.shape[1])])
    return cutout_rgb(a, bands)


def _image_grid(rep: Any, config: Any, datasets: Mapping[str, Any], out: Path) -> None:
    """A few objects per class of each dataset with a class target, in the inputs ``report.image_grid``
    names (from the first representation that has them all)."""
    from astromodal.evaluation import plots
    from astromodal.transforms.representations import build_inputs

    names = getattr(config.report, "image_grid", None)
    if not names:
        return
    swept = set(getattr(config, "sweep_representations", []))
    done = False
    for ds_name, ds in datasets.items():
        dcfg = config.datasets[ds_name]
        t = ds.target(dcfg.primary)
        rep_name = next((r for r, rc in config.representations.items() if r not in swept
                         and set(names) <= set(rc.views())), None)
        if t.kind != "class" or rep_name is None:
            continue
        y = np.asarray(t.values.read()).astype(np.int64)
        per = config.report.image_grid_per_class
        rows = np.concatenate([np.flatnonzero(y == c)[:per] for c in range(t.n_classes)]).astype(np.int64)
        if not len(rows):
            continue
        rows.sort()
        sub = ds.subset(rows)
        views = config.representations[rep_name].views()
        arrays = build_inputs(sub, config.representations[rep_name])
        images = {n: _display(arrays[n], views[n]) for n in names}
        if not done:
            rep.heading("Example inputs per class", 2)
            done = True
        path = out / "figures" / f"inputs_{ds_name}_{rep_name}.png"
        plots.plot_input_grid(images, y[rows], list(t.class_names), path, ids=list(np.asarray(sub.ids.read())))
        rep.image(path.relative_to(out), f"{', '.join(names)} of {per} objects per class ({ds_name}, representation "
                  f"{rep_name}; RGB inputs as RGB)")


def _calibration(rep: Any, records: list[dict[str, Any]], out: Path) -> None:
    """The calibration section (:mod:`astromodal.evaluation.calibration`) when any head was recalibrated."""
    if not any(h.get("calibration") for r in records for h in (r.get("heads") or {}).values()):
        return
    try:
        from astromodal.evaluation import calibration
    except ImportError:  # pragma: no cover - the module is part of the package once it exists
        return
    section = getattr(calibration, "calibration_section", None)
    if section is not None:
        section(rep, records, out)


def _protocol_overrides(rep: Any, config: Any) -> None:
    """One sentence per model entry with a protocol of its own (its cells' protocol)."""
    for m in config.models:
        if m.protocol is None or (m.label or m.name) in set(getattr(config, "sweep_model_labels", [])):
            continue
        rep.paragraph(f"Model {m.label or m.name!r}: " + protocol_sentence(config.protocol_for(m))
                      .replace("Protocol: ", "its own protocol: ", 1))


# ---------------------------------------------------------------------- study D: comparisons, grids, exploration
#: the metrics where higher is better (the others, rmse and mae, lower is better)
HIGHER_IS_BETTER = ("r2", "accuracy", "balanced_accuracy")
#: resamples of the paired bootstrap of the comparisons and the grid heat maps
N_BOOTSTRAP = 1000


def _metric_rows(y: np.ndarray, p: np.ndarray, metric: str) -> np.ndarray:
    """``metric`` of each row of ``y`` / ``p`` (B, n) (one resample per row): r2 = 1 - SS_res / SS_tot with
    the resample's own mean (scikit-learn's r2_score; NaN for a constant resample), rmse, mae, accuracy,
    balanced_accuracy (mean recall over the classes present in the resample)."""
    if metric in ("r2", "rmse", "mae"):
        res = p - y
        if metric == "rmse":
            return np.sqrt(np.mean(res ** 2, axis=1))
        if metric == "mae":
            return np.mean(np.abs(res), axis=1)
        ss_tot = np.sum((y - y.mean(axis=1, keepdims=True)) ** 2, axis=1)
        ss_res = np.sum(res ** 2, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.nan)
    if metric == "accuracy":
        return np.mean(y == p, axis=1)
    if metric == "balanced_accuracy":
        recalls = []
        for c in np.unique(y):
            n = np.sum(y == c, axis=1)
            tp = np.sum((y == c) & (p == c), axis=1)
            recalls.append(np.where(n > 0, tp / np.maximum(n, 1), np.nan))
        with np.errstate(invalid="ignore"):
            return np.nanmean(np.stack(recalls), axis=0)
    from astromodal.errors import ConfigError

    raise ConfigError(f"unknown comparison metric {metric!r}; known: r2, rmse, mae, accuracy, balanced_accuracy")


def metric_value(y: Any, p: Any, metric: str) -> float:
    """``metric`` of predictions ``p`` against ``y`` over every object (see :func:`_metric_rows`)."""
    return float(_metric_rows(np.asarray(y)[None, :], np.asarray(p)[None, :], metric)[0])


def paired_bootstrap(y: Sequence[Any], preds: Mapping[str, Sequence[Any]], metrics: Sequence[str],
                     n_boot: int = N_BOOTSTRAP, seed: int = 0) -> tuple[dict[str, dict[str, float]],
                                                                        dict[str, dict[str, np.ndarray]]]:
    """The paired bootstrap of several cells tested on the same objects, over one or several test splits
    (one per seed): ``y[k]`` the truth of split k, ``preds[label][k]`` each cell's predictions of the same
    objects in the same order. Split k (of n_k objects) is resampled by ``np.random.default_rng([seed, k])
    .integers(0, n_k, size=(n_boot, n_k))`` (drawn in chunks of rows, the same stream): draw b takes the same
    rows for EVERY cell (paired), and a cell's score of draw b is the mean over the splits of its score on
    that draw's rows. Returns ``(points, draws)``: ``points[label][metric]`` the mean over splits of the
    score on all objects, ``draws[label][metric]`` the (n_boot,) draw scores; the 95 % interval of a score
    or of a difference of two cells' scores is the 2.5 and 97.5 percentiles of its draws."""
    labels = list(preds)
    points = {a: {m: float(np.mean([metric_value(y[k], preds[a][k], m) for k in range(len(y))])) for m in metrics}
              for a in labels}
    draws = {a: {m: np.zeros(n_boot) for m in metrics} for a in labels}
    for k, yk in enumerate(y):
        yk = np.asarray(yk)
        n = len(yk)
        rng = np.random.default_rng([seed, k])
        chunk = max(1, min(n_boot, 2_000_000 // max(n, 1)))
        for start in range(0, n_boot, chunk):
            m_rows = min(chunk, n_boot - start)
            idx = rng.integers(0, n, size=(m_rows, n))
            yt = yk[idx]
            for a in labels:
                pt = np.asarray(preds[a][k])[idx]
                for m in metrics:
                    draws[a][m][start:start + m_rows] += _metric_rows(yt, pt, m) / len(y)
    return points, draws


def interval(draws: np.ndarray) -> tuple[float, float] | None:
    """The 2.5 and 97.5 percentiles of bootstrap draws (NaN draws left out; None when none is finite)."""
    d = np.asarray(draws, dtype=np.float64)
    d = d[np.isfinite(d)]
    if not len(d):
        return None
    return float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))


def paired_difference(y: Any, pred_a: Any, pred_b: Any, metric: str = "r2", n_boot: int = N_BOOTSTRAP,
                      seed: int = 0) -> tuple[float, float, float]:
    """``(d, lo, hi)``: d = metric(a) - metric(b) on all objects and the paired bootstrap 95 % interval of
    the difference (:func:`paired_bootstrap` with one split: the same resampled rows for both cells)."""
    points, draws = paired_bootstrap([y], {"a": [pred_a], "b": [pred_b]}, [metric], n_boot, seed)
    ci = interval(draws["a"][metric] - draws["b"][metric])
    lo, hi = ci if ci is not None else (float("nan"), float("nan"))
    return points["a"][metric] - points["b"][metric], lo, hi


def verdict(a: str, b: str, diff: float, lo: float, hi: float, metric: str) -> tuple[bool, str]:
    """``(beats, sentence)`` for ``a`` against ``b`` from the paired difference d = metric(a) - metric(b) and
    its 95 % interval: a beats b when the whole interval lies on a's side of 0 (the gain is larger than the
    interval's half-width, for a symmetric interval), else the sentence says it does not and why."""
    up = metric in HIGHER_IS_BETTER
    gain, glo, ghi = (diff, lo, hi) if up else (-diff, -hi, -lo)
    if np.isfinite(glo) and glo > 0:
        return True, (f"{a} beats {b} by {gain:.3g} in {metric} (95 % interval {glo:.3g}..{ghi:.3g}): more than the "
                      "interval width, the whole paired interval of the difference lies above 0.")
    if np.isfinite(ghi) and ghi < 0:
        return False, (f"{a} does not beat {b}: {b} is better by {-gain:.3g} in {metric} (95 % interval "
                       f"{-ghi:.3g}..{-glo:.3g}), the whole paired interval lies on {b}'s side.")
    return False, (f"{a} does not beat {b}: the difference {gain:+.3g} in {metric} lies inside the interval "
                   f"(95 % interval {glo:.3g}..{ghi:.3g} includes 0).")


def _head_arrays(pred: dict[str, Any] | None, target: str, task: str) -> tuple[np.ndarray, np.ndarray] | None:
    """``(truth, prediction)`` of one head of a cell's saved test predictions (the mean of a regression
    head, the label of a class head); None when the cell has none."""
    if pred is None:
        return None
    h = pred["heads"].get(target)
    if h is None and len(pred["heads"]) == 1:
        h = next(iter(pred["heads"].values()))
    key = "mean" if task == "regression" else "label"
    if h is None or key not in h or "truth" not in h:
        return None
    return np.asarray(h["truth"]), np.asarray(h[key])


def _column_of(pred: dict[str, Any], column: str, dataset: Any) -> np.ndarray | None:
    """A column of a cell's test objects: saved with its predictions, else read from the dataset by id."""
    if column in pred["columns"]:
        return np.asarray(pred["columns"][column])
    if dataset is None or column not in dataset.columns or pred.get("ids") is None:
        return None
    ids = np.asarray(dataset.ids.read())
    where = {str(v): i for i, v in enumerate(ids)}
    rows = [where.get(str(v)) for v in np.asarray(pred["ids"])]
    if any(r is None for r in rows):
        return None
    return np.asarray(dataset.columns[column].values.read())[np.asarray(rows, dtype=np.int64)]


@dataclass
class _Scored:
    """One comparison entry's cells (one representation x model) and their test predictions per seed."""

    model: str
    representation: str
    records: dict[int, dict[str, Any]]  # seed -> record

    @property
    def name(self) -> str:
        return f"{self.model} | {self.representation}"


def _ref_cells(refs: Sequence[Any], records: list[dict[str, Any]], dataset: str,
               swept: frozenset[str] = frozenset()) -> list[_Scored]:
    """The cells of each reference on ``dataset``: a bare model label's on every representation but a
    sweep's variants (``swept``; those are named with ``{model, representation}``)."""
    out: dict[tuple[str, str], _Scored] = {}
    for ref in refs:
        for r in records:
            if r["dataset"] != dataset or r["model"] != ref.model:
                continue
            if ref.representation is not None and r["representation"] != ref.representation:
                continue
            if ref.representation is None and r["representation"] in swept:
                continue
            key = (r["representation"], r["model"])
            out.setdefault(key, _Scored(r["model"], r["representation"], {})).records[r["seed"]] = r
    return list(out.values())


def _aligned(cells: list[_Scored], seeds: list[int], target: str, task: str, out: Path, subset: Any,
             dataset: Any, notes: list[str]) -> dict[str, Any] | None:
    """Per seed the truth, each cell's predictions on the same test objects (aligned by id) and the subset
    mask; rows without a finite truth (class code < 0) or a finite prediction of every cell left out."""
    y_all, preds, masks, n_left = [], {c.name: [] for c in cells}, [], 0
    for seed in seeds:
        arrays = {}
        for c in cells:
            pred = _predictions(out, c.records[seed])
            got = _head_arrays(pred, target, task)
            if got is None:
                notes.append(f"cell {c.records[seed]['cell']} has no saved test predictions of {target!r} (finished "
                             "by an older astromodal?): left out")
                return None
            arrays[c.name] = (pred, *got)
        ref_pred = arrays[cells[0].name][0]
        ids = [str(v) for v in np.asarray(ref_pred["ids"])]
        common = set(ids)
        for pred, _, _ in arrays.values():
            common &= {str(v) for v in np.asarray(pred["ids"])}
        if len(common) < len(ids):
            notes.append(f"seed {seed}: the cells were not all tested on the same objects; compared on the "
                         f"{len(common)} they share")
        order = [i for i, v in enumerate(ids) if v in common]
        keyed = [ids[i] for i in order]
        y = None
        cols: dict[str, np.ndarray] = {}
        for name, (pred, truth, p) in arrays.items():
            pos = {str(v): i for i, v in enumerate(np.asarray(pred["ids"]))}
            rows = np.asarray([pos[k] for k in keyed], dtype=np.int64)
            y = truth[rows] if y is None else y
            cols[name] = p[rows]
        ok = np.isfinite(y.astype(np.float64)) if task == "regression" else y.astype(np.int64) >= 0
        for p in cols.values():
            if task == "regression":
                ok &= np.isfinite(p.astype(np.float64))
        n_left += int((~ok).sum())
        mask = None
        if subset is not None:
            values = _column_of(ref_pred, subset.column, dataset)
            if values is None:
                notes.append(f"subset column {subset.column!r} is neither saved with cell "
                             f"{cells[0].records[seed]['cell']}'s predictions nor found by id in the dataset")
                return None
            mask = subset.mask(np.asarray(values)[np.asarray(order, dtype=np.int64)])[ok]
        y_all.append(y[ok])
        for name in cols:
            preds[name].append(cols[name][ok])
        masks.append(mask)
    return {"y": y_all, "preds": preds, "masks": masks, "n_left": n_left}


def _rank_rows(cells: list[_Scored], y: list[np.ndarray], preds: dict[str, list[np.ndarray]], metric: str,
               metrics: list[str], n_boot: int) -> tuple[list[dict[str, Any]], dict[str, Any], Any]:
    """Ranked rows (best first by ``metric``), the points and draws of the paired bootstrap."""
    points, draws = paired_bootstrap(y, preds, metrics, n_boot)
    rows = []
    for c in cells:
        row: dict[str, Any] = {"cell": c.name, "model": c.model, "representation": c.representation,
                               "n": int(sum(len(v) for v in y))}
        for m in metrics:
            ci = interval(draws[c.name][m])
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = points[c.name][m], *(ci or (None, None))
        rows.append(row)
    up = metric in HIGHER_IS_BETTER
    rows.sort(key=lambda r: (-r[metric] if up else r[metric]) if np.isfinite(r[metric]) else np.inf)
    for i, row in enumerate(rows, 1):
        row["rank"] = i
    return rows, points, draws


def _versus(rows: list[dict[str, Any]], against: set[str], draws: Any, metric: str) -> dict[str, Any] | None:
    """The best of the compared cells against the best of ``against`` (each by the point score)."""
    mine = [r for r in rows if r["cell"] not in against]
    theirs = [r for r in rows if r["cell"] in against]
    if not mine or not theirs:
        return None
    a, b = mine[0], theirs[0]  # rows are ranked best first
    diff = a[metric] - b[metric]
    ci = interval(draws[a["cell"]][metric] - draws[b["cell"]][metric])
    lo, hi = ci if ci is not None else (float("nan"), float("nan"))
    beats, sentence = verdict(a["cell"], b["cell"], diff, lo, hi, metric)
    return {"best": a["cell"], "against": b["cell"], "metric": metric, "difference": diff, "lo": lo, "hi": hi,
            "beats": beats, "sentence": sentence}


def run_comparison(c: Any, records: list[dict[str, Any]], config: Any, out: Path,
                   datasets: Mapping[str, Any] | None = None, n_boot: int = N_BOOTSTRAP) -> list[dict[str, Any]]:
    """One ``report.comparisons`` entry, per dataset with its cells: ``{name, title, dataset, target, task,
    metric, seeds, subset, n_bootstrap, rows: {all, subset}, versus: {all, subset}, notes, summary}``.
    Several seeds: the seeds every named cell ran on, each a test split of its own, paired by
    :func:`paired_bootstrap` (the score is the mean over those seeds)."""
    names = [c.dataset] if c.dataset else list(config.datasets)
    out_list = []
    for ds_name in names:
        dcfg = config.datasets[ds_name]
        target = c.target or dcfg.primary
        if target not in dcfg.targets:
            continue
        swept = frozenset(getattr(config, "sweep_representations", []))
        mine, theirs = (_ref_cells(c.refs(w), records, ds_name, swept) for w in ("cells", "against"))
        theirs = [t for t in theirs if t.name not in {m.name for m in mine}]
        cells = mine + theirs
        if not cells:
            continue
        notes: list[str] = []
        found = {(s.model) for s in cells}
        missing = [r.text() for r in [*c.refs("cells"), *c.refs("against")] if r.model not in found]
        if missing:
            notes.append(f"no finished cell of {missing} on dataset {ds_name!r}")
        seed_sets = [set(s.records) for s in cells]
        seeds = sorted(set.intersection(*seed_sets))
        if len(set.union(*seed_sets)) > len(seeds):
            notes.append(f"compared on the seeds every cell ran on: {seeds}")
        first = next(iter(cells[0].records.values()))
        head = (first.get("heads") or {}).get(target) or {"task": first["task"]}
        task = head["task"]
        metric = c.metric or ("r2" if task == "regression" else "accuracy")
        if (metric in ("r2", "rmse", "mae")) != (task == "regression"):
            notes.append(f"metric {metric!r} is not a {task} score: {'r2' if task == 'regression' else 'accuracy'} "
                         "used")
            metric = "r2" if task == "regression" else "accuracy"
        metrics = list(dict.fromkeys([metric, "r2", "rmse", "mae"] if task == "regression" else [metric]))
        entry: dict[str, Any] = {"name": c.name, "title": c.title, "dataset": ds_name, "target": target, "task": task,
                                 "metric": metric, "seeds": seeds, "subset": c.subset.text() if c.subset else None,
                                 "n_bootstrap": n_boot, "rows": {}, "versus": {}, "notes": notes}
        data = _aligned(cells, seeds, target, task, out, c.subset, (datasets or {}).get(ds_name), notes) \
            if seeds else None
        if data is None:
            entry["summary"] = f"{c.name}: not compared ({'; '.join(notes) or 'no common seed'})"
            out_list.append(entry)
            continue
        if data["n_left"]:
            notes.append(f"{data['n_left']} test object(s) without a finite {target} (or prediction) left out")
        parts = {"all": (data["y"], data["preds"])}
        if c.subset is not None:
            masks = data["masks"]
            parts["subset"] = ([y[m] for y, m in zip(data["y"], masks, strict=True)],
                               {k: [p[m] for p, m in zip(v, masks, strict=True)] for k, v in data["preds"].items()})
        against = {t.name for t in theirs}
        for part, (y, preds) in parts.items():
            if min(len(v) for v in y) < 2:
                notes.append(f"{part}: fewer than 2 test objects, not scored")
                continue
            rows, _, draws = _rank_rows(cells, y, preds, metric, metrics, n_boot)
            for row in rows:
                row["against"] = row["cell"] in against
            entry["rows"][part] = rows
            if against:
                entry["versus"][part] = _versus(rows, against, draws, metric)
        lines = []
        for part, v in entry["versus"].items():
            if v is not None:
                lines.append(("" if part == "all" else f"on {entry['subset']}: ") + v["sentence"])
        if not lines and entry["rows"].get("all"):
            best = entry["rows"]["all"][0]
            lines.append(f"best: {best['cell']} ({metric} {best[metric]:.3g})")
        entry["summary"] = f"{c.name}: " + " ".join(lines) if lines else f"{c.name}: not compared"
        out_list.append(entry)
    return out_list


def _ci_text(row: dict[str, Any], m: str) -> str:
    v, lo, hi = row.get(m), row.get(f"{m}_lo"), row.get(f"{m}_hi")
    if v is None or not np.isfinite(v):
        return "n/a"
    return f"{v:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None else "")


def _comparison_sections(rep: Any, records: list[dict[str, Any]], config: Any, out: Path,
                         datasets: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Per ``report.comparisons`` entry: the ranked table (all test objects, and the subset) and the
    verdict of the best of ``cells`` against the best of ``against``. Returns the results.json entries."""
    summaries = []
    for c in getattr(config.report, "comparisons", None) or []:
        for entry in run_comparison(c, records, config, out, datasets):
            summaries.append(entry)
            title = c.title or c.name
            rep.heading(f"{title} ({entry['dataset']}, {entry['target']})", 2)
            metrics = [entry["metric"]] + ([m for m in ("r2", "rmse", "mae") if m != entry["metric"]]
                                           if entry["task"] == "regression" else [])
            seeds = entry["seeds"]
            rep.paragraph(f"Test split{'s' if len(seeds) > 1 else ''} of seed{'s' if len(seeds) > 1 else ''} {seeds}; "
                          f"ranked by {entry['metric']} ({'higher' if entry['metric'] in HIGHER_IS_BETTER else 'lower'}"
                          f" is better); [lo, hi]: the 95 % interval of a paired bootstrap ({entry['n_bootstrap']} "
                          "resamples of the test objects, the same resamples for every cell"
                          + ("; with several seeds each seed's split is resampled and the score is the mean over "
                             "the seeds" if len(seeds) > 1 else "") + "). Cells marked `against` are the reference "
                          "group.")
            for note in entry["notes"]:
                rep.paragraph(f"Note: {note}")
            for part, rows in entry["rows"].items():
                label = "All test objects" if part == "all" else f"Test objects with {entry['subset']}"
                rep.heading(f"{label} (n = {rows[0]['n']})", 3)
                table = [{"rank": r["rank"], "cell": r["cell"] + (" (against)" if r["against"] else ""),
                          **{m: _ci_text(r, m) for m in metrics}} for r in rows]
                rep.table(table, ["rank", "cell", *metrics])
                v = entry["versus"].get(part)
                if v is not None:
                    rep.paragraph(f"**{v['sentence']}**")
    return summaries


def _cell_interval(recs: list[dict[str, Any]], out: Path, metric: str, task: str, target: str | None
                   ) -> tuple[float, float | None, float | None]:
    """A cell's ``metric`` on its test split (mean over its seeds) with its bootstrap 95 % interval; the
    record's own value without saved predictions."""
    ys, ps = [], []
    for r in recs:
        got = _head_arrays(_predictions(out, r), target or r.get("target") or "", task)
        if got is None:
            break
        y, p = got
        ok = np.isfinite(y.astype(np.float64)) & np.isfinite(p.astype(np.float64)) if task == "regression" \
            else y.astype(np.int64) >= 0
        ys.append(y[ok])
        ps.append(p[ok])
    if len(ys) == len(recs) and ys and min(len(y) for y in ys) >= 2:
        points, draws = paired_bootstrap(ys, {"c": ps}, [metric])
        ci = interval(draws["c"][metric])
        return points["c"][metric], *(ci or (None, None))
    vals = [r["metrics"].get(metric) for r in recs]
    vals = [v for v in vals if v is not None]
    return (float(np.mean(vals)) if vals else float("nan")), None, None


def grid_summary(sweep: Any, records: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """A two-axis sweep's matrices per model: ``{model: {rows, columns, metric, value, lo, hi, fit_seconds}}``
    (rows: the first axis' display names, columns: the second's; NaN where no cell ran); the value is the
    primary test metric (R^2 for regression, accuracy otherwise), mean over seeds, with its bootstrap 95 %
    interval (:func:`paired_bootstrap`), and fit_seconds the mean training time."""
    (_, ta, na), (_, tb, nb) = sweep.grid_axes()
    mine = [r for r in records if r["representation"].startswith(f"{sweep.name}=")]
    out_d: dict[str, Any] = {}
    for model in dict.fromkeys(r["model"] for r in mine):
        shape = (len(ta), len(tb))
        value, lo, hi, secs = (np.full(shape, np.nan) for _ in range(4))
        metric = None
        for i, a in enumerate(ta):
            for j, b in enumerate(tb):
                recs = [r for r in mine if r["model"] == model and r["representation"] == sweep.label(f"{a},{b}")]
                if not recs:
                    continue
                task = recs[0]["task"]
                metric = "r2" if task == "regression" else "accuracy"
                v, l_, h_ = _cell_interval(recs, out, metric, task, None)
                value[i, j] = v
                lo[i, j] = np.nan if l_ is None else l_
                hi[i, j] = np.nan if h_ is None else h_
                s = [r.get("fit_seconds") for r in recs if r.get("fit_seconds") is not None]
                secs[i, j] = float(np.mean(s)) if s else np.nan

        def plain(m: np.ndarray) -> list[list[float | None]]:
            return [[None if not np.isfinite(x) else float(x) for x in row] for row in m]

        out_d[model] = {"axes": [k for k, _, _ in sweep.grid_axes()], "rows": na, "columns": nb, "metric": metric,
                        "value": plain(value), "lo": plain(lo), "hi": plain(hi), "fit_seconds": plain(secs)}
    return out_d


def _grid_section(rep: Any, sweep: Any, records: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """A two-axis sweep: per model a table and heat maps of the primary metric (with intervals) and of the
    training time."""
    from astromodal.evaluation import plots

    summary = grid_summary(sweep, records, out)
    if not summary:
        return summary
    (ka, _, _), (kb, _, _) = sweep.grid_axes()
    rep.heading(f"{sweep.title or 'Grid'}: {sweep.name} ({ka} x {kb} of representation {sweep.representation!r})", 2)
    rep.paragraph("On the test split; the primary metric (R^2 for regression, accuracy otherwise) with its 95 % "
                  f"bootstrap interval ({N_BOOTSTRAP} resamples of the test objects; with several seeds the mean "
                  "over seeds, each split resampled) and the training time (fit_seconds, mean over seeds).")
    for model, g in summary.items():
        rows = []
        for i, ra in enumerate(g["rows"]):
            for j, cb in enumerate(g["columns"]):
                v = g["value"][i][j]
                if v is None:
                    continue
                lo, hi = g["lo"][i][j], g["hi"][i][j]
                s = g["fit_seconds"][i][j]
                rows.append({ka: ra, kb: cb, "model": model,
                             g["metric"]: f"{v:.3f}" + (f" [{lo:.3f}, {hi:.3f}]" if lo is not None else ""),
                             "fit_seconds": "" if s is None else f"{s:.3g}"})
        rep.table(rows, [ka, kb, "model", g["metric"], "fit_seconds"])
        nan = np.array([[np.nan if x is None else x for x in row] for row in g["value"]], dtype=float)
        lo = np.array([[np.nan if x is None else x for x in row] for row in g["lo"]], dtype=float)
        hi = np.array([[np.nan if x is None else x for x in row] for row in g["hi"]], dtype=float)
        secs = np.array([[np.nan if x is None else x for x in row] for row in g["fit_seconds"]], dtype=float)
        base = out / "figures" / f"grid_{sweep.name}_{model}"
        path = plots.plot_heatmap(nan, f"{base}_{g['metric']}.png", g["rows"], g["columns"], lo, hi,
                                  title=f"{sweep.title or sweep.name}: {g['metric']} ({model})", xlabel=kb, ylabel=ka,
                                  colour_label=g["metric"])
        rep.image(path.relative_to(out), f"{g['metric']} with its 95 % interval per {ka} x {kb} ({model})")
        path = plots.plot_heatmap(secs, f"{base}_fit_seconds.png", g["rows"], g["columns"],
                                  title=f"{sweep.title or sweep.name}: training time ({model})", xlabel=kb, ylabel=ka,
                                  colour_label="fit_seconds [s]", fmt=".3g")
        rep.image(path.relative_to(out), f"training time (fit_seconds) per {ka} x {kb} ({model})")
    return summary


def _values_of(ds: Any, name: str) -> np.ndarray | None:
    """A target's or a column's values (None when the dataset has neither)."""
    if name in ds.targets:
        return np.asarray(ds.targets[name].values.read())
    if name in ds.columns:
        return np.asarray(ds.columns[name].values.read())
    return None


def check_report_data(config: Any, datasets: Mapping[str, Any]) -> None:
    """The data the report reads exists (called before any cell trains): each comparison's ``subset``
    column in its datasets, the exploratory target (a regression target or numeric column), ``images`` (a
    block or an image input of a representation), ``spectra``, ``classes`` and ``by``. One ConfigError line
    naming the key and what the dataset has."""
    from astromodal.errors import ConfigError

    rc = config.report
    for c in getattr(rc, "comparisons", None) or []:
        if c.subset is None:
            continue
        for name in [c.dataset] if c.dataset else list(datasets):
            ds = datasets.get(name)
            if ds is not None and c.subset.column not in ds.columns:
                raise ConfigError(f"report.comparisons {c.name!r}: subset column {c.subset.column!r} is no column of "
                                  f"dataset {name!r} (its columns: {sorted(ds.columns)})")
    e = getattr(rc, "exploratory", None)
    if e is None:
        return
    chosen = {n: d for n, d in datasets.items() if e.dataset in (None, n)}
    having = {n: d for n, d in chosen.items() if e.target in d.targets or e.target in d.columns}
    where = "report.exploratory"
    if not having:
        raise ConfigError(f"{where}: target {e.target!r} is no target or column of dataset(s) {sorted(chosen)} "
                          f"(targets: {sorted({t for d in chosen.values() for t in d.targets})})")
    inputs = {k for r, rep in config.representations.items() for k in rep.views()}
    for n, ds in having.items():
        if e.target in ds.targets and ds.targets[e.target].kind == "class":
            raise ConfigError(f"{where}: target {e.target!r} of dataset {n!r} is a class target; the exploratory "
                              "figures bin a real-valued target (name the classes with 'classes')")
        if e.images and e.images not in ds.images and e.images not in inputs:
            raise ConfigError(f"{where}: images {e.images!r} is no images block of dataset {n!r} (blocks: "
                              f"{sorted(ds.images)}) nor an input of a representation")
        if e.spectra and e.spectra not in ds.spectra:
            raise ConfigError(f"{where}: spectra {e.spectra!r} is no spectra block of dataset {n!r} (blocks: "
                              f"{sorted(ds.spectra)})")
        if e.classes and (e.classes not in ds.targets or ds.targets[e.classes].kind != "class"):
            raise ConfigError(f"{where}: classes {e.classes!r} is no class target of dataset {n!r} (class targets: "
                              f"{sorted(t for t, v in ds.targets.items() if v.kind == 'class')})")
        if e.by and _values_of(ds, e.by) is None:
            raise ConfigError(f"{where}: by {e.by!r} is no column of dataset {n!r} (columns: {sorted(ds.columns)})")


def target_bins(values: Any, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """``(bin per object, edges)``: quantile edges of the finite values (duplicates merged); -1 for a
    NaN value."""
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    edges = np.unique(np.quantile(v[ok], np.linspace(0, 1, n_bins + 1))) if ok.any() else np.zeros(1)
    if len(edges) < 2:
        edges = np.array([edges[0], edges[0] + 1e-12])
    which = np.clip(np.searchsorted(edges, v, side="right") - 1, 0, len(edges) - 2)
    return np.where(ok, which, -1), edges


def _groups_of(values: np.ndarray, y: np.ndarray, name: str) -> dict[str, np.ndarray]:
    """``y`` grouped by ``values``: one group per value for at most 8 distinct values, else 4 quantile bins."""
    v = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(v)
    distinct = np.unique(v[ok])
    if len(distinct) <= 8:
        return {f"{name}={x:g}": y[v == x] for x in distinct}
    which, edges = target_bins(v, 4)
    return {f"{edges[b]:.3g}-{edges[b + 1]:.3g}": y[which == b] for b in range(len(edges) - 1)}


def exploratory_section(rep: Any, config: Any, datasets: Mapping[str, Any], out: Path) -> dict[str, Any]:
    """``report.exploratory``: per dataset with the target, the image grid per target bin, the median
    spectrum per bin with the emission lines marked, the histogram and the box plots. Returns per dataset
    the figure paths and counts (``results.json`` key ``exploratory``)."""
    from astromodal.data.simulate.galaxies import EMISSION_LINES
    from astromodal.evaluation import plots

    e = getattr(config.report, "exploratory", None)
    if e is None:
        return {}
    summary: dict[str, Any] = {}
    for ds_name, ds in datasets.items():
        y_raw = _values_of(ds, e.target) if e.dataset in (None, ds_name) else None
        if y_raw is None:
            continue
        if not summary:
            rep.heading(f"Exploratory figures: {e.target}", 2)
        y = y_raw.astype(np.float64)
        finite = np.isfinite(y)
        n_nan = int((~finite).sum())
        log = e.log if e.log is not None else bool(finite.any() and np.all(y[finite] > 0)
                                                    and np.max(y[finite]) / np.min(y[finite]) > 100)
        shown = np.where(finite & (y > 0), np.log10(np.where(y > 0, y, 1.0)), np.nan) if log else y
        name = f"log10 {e.target}" if log else e.target
        which, edges = target_bins(y, e.bins)
        bin_names = [f"{e.target} {edges[b]:.3g}-{edges[b + 1]:.3g}" for b in range(len(edges) - 1)]
        left = f"{n_nan} of {len(y)} objects have no finite {e.target} and are left out"
        if log and int((finite & (y <= 0)).sum()):
            left += f"; {int((finite & (y <= 0)).sum())} with {e.target} <= 0 are left out of the log10 figures"
        info: dict[str, Any] = {"n": int(len(y)), "n_nan": n_nan, "bins": [float(x) for x in edges], "figures": []}
        rep.paragraph(f"Dataset {ds_name!r} (the training file before any split): {e.target} in {len(edges) - 1} "
                      f"quantile bins; {left}.")
        rng = np.random.default_rng(0)
        chosen = [np.sort(rng.permutation(np.flatnonzero(which == b))[: e.per_bin]) for b in range(len(edges) - 1)]
        rows = np.concatenate(chosen).astype(np.int64)
        if e.images and len(rows):
            images = _explore_images(ds, e.images, rows, config)
            if images is not None:
                path = plots.plot_input_grid({e.images: images}, which[rows], bin_names,
                                             out / "figures" / f"explore_images_{ds_name}.png",
                                             ids=list(_read_rows(ds.ids, rows)))
                info["figures"].append(str(path.relative_to(out)))
                rep.image(path.relative_to(out), f"{e.images}: {e.per_bin} objects per {e.target} bin (Lupton gri; "
                          f"{n_nan} objects without {e.target} left out)")
        if e.spectra:
            path = _explore_spectra(ds, e, which, bin_names, ds_name, out, EMISSION_LINES if e.lines else None, info)
            if path is not None:
                rep.image(path.relative_to(out), info.pop("_spectra_caption"))
        classes = e.classes or ("class" if "class" in ds.targets and ds.targets["class"].kind == "class" else None)
        groups: dict[str, np.ndarray] = {"all": shown}
        cls_groups: dict[str, np.ndarray] = {}
        missing_per_class = ""
        if classes:
            t = ds.targets[classes]
            codes = np.asarray(t.values.read()).astype(np.int64)
            cls_groups = {c: shown[codes == k] for k, c in enumerate(t.class_names)}
            groups = cls_groups
            missing_per_class = ", ".join(f"{c} {int((~np.isfinite(v)).sum())}" for c, v in cls_groups.items())
        caption = f"histogram of {name}" + (f" per {classes}" if classes else "") + f"; left out: {n_nan} without " \
            f"{e.target}" + (f" ({missing_per_class})" if missing_per_class else "")
        path = plots.plot_histograms(groups, out / "figures" / f"explore_hist_{ds_name}.png", xlabel=name)
        info["figures"].append(str(path.relative_to(out)))
        info["histogram_caption"] = caption
        rep.image(path.relative_to(out), caption)
        panels = []
        if cls_groups:
            panels.append((f"per {classes}", cls_groups))
        by = e.by or ("n_neighbours" if "n_neighbours" in ds.columns else None)
        if by and _values_of(ds, by) is not None:
            panels.append((f"per {by}", _groups_of(_values_of(ds, by), shown, by)))
        if panels:
            try:
                path = plots.plot_box_groups(panels, out / "figures" / f"explore_box_{ds_name}.png", ylabel=name)
            except Exception as exc:  # noqa: BLE001 - a figure without data is a note, not a failed report
                rep.paragraph(f"Note: no box plots ({exc}).")
            else:
                info["figures"].append(str(path.relative_to(out)))
                rep.image(path.relative_to(out), f"box plots of {name} " + " and ".join(t for t, _ in panels)
                          + f" (objects with a finite value; {n_nan} without {e.target} left out)")
        summary[ds_name] = info
    return summary


def _read_rows(a: Any, rows: np.ndarray) -> np.ndarray:
    from astromodal.evaluation.plots import _read

    return _read(a, rows)


def _explore_images(ds: Any, images: str, rows: np.ndarray, config: Any) -> np.ndarray | None:
    """Display images (N, H, W, 3) of ``rows``: an images block as its Lupton gri composite
    (:func:`~astromodal.evaluation.plots.cutout_rgb`), or an image input of the first representation with it."""
    from astromodal.evaluation.plots import _read, cutout_rgb
    from astromodal.transforms.representations import build_inputs

    if images in ds.images:
        block = ds.images[images]
        return cutout_rgb(_read(block.pixels, rows), block.bands)
    swept = set(getattr(config, "sweep_representations", []))
    rep_name = next((r for r, rc in config.representations.items() if r not in swept and images in rc.views()), None)
    if rep_name is None:
        return None
    arrays = build_inputs(ds.subset(rows), config.representations[rep_name])
    return _display(arrays[images], config.representations[rep_name].views()[images])


def _explore_spectra(ds: Any, e: Any, which: np.ndarray, bin_names: list[str], ds_name: str, out: Path,
                     lines: Mapping[str, float] | None, info: dict[str, Any], per_bin: int = 300) -> Path | None:
    """The median spectrum per target bin (each spectrum divided by its median |flux|; at most ``per_bin``
    objects per bin, seeded): with a finite ``redshift`` (target or column) each spectrum is moved to its
    rest frame (wavelength / (1 + z)) and interpolated onto one rest grid (the observed grid / (1 + the
    median z)), so the lines sit at their rest wavelengths; without one the observed medians, lines at rest."""
    from astromodal.evaluation import plots
    from astromodal.evaluation.plots import _read

    s = ds.spectra[e.spectra]
    z_all = _values_of(ds, "redshift")
    rng = np.random.default_rng(1)
    medians, counts = [], []
    grid = None
    rest = z_all is not None
    for b in range(len(bin_names)):
        rows = np.flatnonzero(which == b)
        if rest:
            rows = rows[np.isfinite(z_all[rows].astype(float)) & (z_all[rows].astype(float) > -1)]
        rows = np.sort(rng.permutation(rows)[:per_bin])
        counts.append(len(rows))
        if not len(rows):
            medians.append(None)
            continue
        flux = _read(s.flux, rows).astype(np.float64)
        wl = _read(s.wavelength, rows) if not s.shared_grid else np.broadcast_to(np.asarray(s.wavelength), flux.shape)
        med = np.median(np.abs(flux), axis=1, keepdims=True)
        flux = flux / np.where(med > 0, med, 1.0)
        if rest:
            z = z_all[rows].astype(np.float64)
            if grid is None:
                zmed = float(np.median(z_all[np.isfinite(z_all.astype(float))]))
                grid = np.asarray(wl[0], dtype=np.float64) / (1 + zmed)
            stack = np.stack([np.interp(grid, wl[i] / (1 + z[i]), flux[i], left=np.nan, right=np.nan)
                              for i in range(len(rows))])
        else:
            grid = np.asarray(wl[0], dtype=np.float64) if grid is None else grid
            stack = np.stack([np.interp(grid, wl[i], flux[i]) for i in range(len(rows))])
        with np.errstate(all="ignore"):
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                medians.append(np.nanmedian(stack, axis=0))
    keep = [i for i, m in enumerate(medians) if m is not None]
    if not keep or grid is None:
        return None
    path = plots.plot_median_spectra(grid, [medians[i] for i in keep], [bin_names[i] for i in keep],
                                     out / "figures" / f"explore_spectra_{ds_name}.png", lines=lines,
                                     xlabel="rest-frame wavelength [Å]" if rest else "observed wavelength [Å]",
                                     counts=[counts[i] for i in keep])
    info["figures"].append(str(path.relative_to(out)))
    frame = ("each object moved to its rest frame by its redshift, lines at their rest wavelengths" if rest else
             "no redshift: observed frame, lines at their rest wavelengths")
    info["_spectra_caption"] = (f"median {e.spectra} spectrum per {e.target} bin (each divided by its median "
                                f"|flux|; at most {per_bin} objects per bin; {frame}"
                                + ("; emission lines of the simulator dashed" if lines else "") + ")")
    return path
