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
    _cells_table(rep, records, config, out)
    _head_sections(rep, main)
    _class_tables(rep, main, config)
    _radius_section(rep, main, config, out)
    _sweep_sections(rep, records, config, out)
    cv = config.protocol.kind == "cv"
    baseline_section(rep, records, "on the same pooled out-of-fold predictions" if cv else "on the same test split")
    _confusion_figures(rep, main, config, out)
    _roc_figures(rep, main, config, out)
    _pit_figures(rep, main, config, out)
    _calibration(rep, main, out)
    _image_grid(rep, config, dict(datasets or {}), out)
    _embedding_figures(rep, embeddings, config, out)
    summary = _write_results(out, records, config, command, notes)
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
    if config.protocol.kind == "pretrain_probe" and records:
        rows, cols = probe_table(records)
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


def _write_results(out: Path, records: list[dict[str, Any]], config: Any, command: str,
                   notes: Sequence[str]) -> dict[str, Any]:
    """``results.json``: the run's settings and every cell (without the per-object ROC arrays)."""
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
    rep.heading("Radius (regression heads) in the paper's terms", 2)
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


def _sweep_sections(rep: Any, records: list[dict[str, Any]], config: Any, out: Path) -> None:
    """Per sweep: its table, and for numeric values a line figure of the scores and the training time."""
    from astromodal.evaluation import plots

    for sweep in getattr(config, "sweeps", None) or []:
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
