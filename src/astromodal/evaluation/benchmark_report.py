"""Turn benchmark cell records into tables, plots, ``results.json`` and ``report.md``/``.html``.

Tables follow the studies' published forms: a model x (representation-dataset) accuracy grid with the
average and variance across models per column (Table 1 and Table 2 of AstroSpectra-MNIST, classical
and deep models apart), per-class F1, and for the k-fold protocol the per-model training loss,
validation loss and validation accuracy over folds beside the test metrics of the fold ensemble.
"""

from __future__ import annotations

from collections import defaultdict
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
        rows.append(row)
    return rows


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
    for r in recs:
        b, m = r["baseline"], r["metrics"]
        cls = r["task"] == "classification"
        key = "balanced_accuracy" if cls else "rmse"
        rows.append({"cell": r["cell"], "task": r["task"],
                     "baseline": f"{b['value']}" if cls else "training mean",
                     "metric": key, "model": m[key], "baseline score": b["metrics"][key],
                     "beats_baseline": "yes" if r.get("beats_baseline") else "**NO**"})
    rep.table(rows, ["cell", "task", "baseline", "metric", "model", "baseline score", "beats_baseline"])
    losers = [r for r in recs if not r.get("beats_baseline")]
    if losers:
        rep.paragraph(f"**Warning: {len(losers)} cell(s) do not beat the trivial baseline:** "
                      + "; ".join(baseline_text(r) for r in losers) + ".")


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
        rows.append({"model": r["model"], "dataset": r["dataset"], "representation": r["representation"],
                     "n_members": r.get("n_members"), "member_weights": r.get("member_weights", ""),
                     "oob": f"{oob.get('metric', '')} {score:.4f}" if score is not None else "n/a",
                     "sigma_net": "n/a" if net is None else f"{net:.4g}"})
    return rows, ["model", "dataset", "representation", "n_members", "member_weights", "oob", "sigma_net"]


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


def write_benchmark_report(runner: Any, records: list[dict[str, Any]], prepared: dict[Any, Any]) -> dict[str, Any]:
    from astromodal.evaluation import plots
    from astromodal.evaluation.report import Report
    from astromodal.transforms.representations import build_inputs, flatten_inputs

    cfg = runner.config
    out: Path = runner.out
    fig_dir = out / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    rep = Report(f"astromodal benchmark: {cfg.name}")
    if cfg.description:
        rep.paragraph(cfg.description)
    rep.heading("Reproduce", 2)
    rep.code(runner.command)
    for note in runner.notes:
        rep.paragraph(f"Note: {note}")
    if not records:
        rep.paragraph("No cell was run (every dataset was skipped).")

    # dataset summaries
    rep.heading("Data", 2)
    ds_rows = []
    for name in cfg.datasets:
        loaded = runner._load(name)  # cached; loaded here when every cell was done before
        if not loaded:
            continue
        train, test = loaded
        target = cfg.datasets[name].target
        t = train.target(target)

        def counts(ds: Any, target: str = target) -> str:
            c = ds.summary()["targets"][target].get("counts", {})
            return ", ".join(f"{k} {v:,}" for k, v in c.items()) if c else "n/a"

        # the training file and the source's own test file apart (a test class unseen in training shows here);
        # without a test file the test objects are a split of the training ones (counted before the split)
        if test is not None:
            n_train, n_test = f"{len(train):,}", f"{len(test):,}" + (" (not used under cv)" if cfg.protocol.kind == "cv"
                                                                     else "")
        else:
            n_train = f"{len(train):,} (before the split)"
            n_test = ("each one, out of fold" if cfg.protocol.kind == "cv"
                      else f"a stratified {cfg.protocol.test_fraction:g} of them")
        ds_rows.append({"dataset": name, "source": cfg.datasets[name].source, "target": target, "kind": t.kind,
                        "train objects": n_train, "train classes": counts(train),
                        "test objects": n_test, "test classes": counts(test) if test is not None else ""})
    if ds_rows:
        rep.table(ds_rows, ["dataset", "source", "target", "kind", "train objects", "train classes", "test objects",
                            "test classes"])
    rep.paragraph(protocol_sentence(cfg.protocol))

    # main tables
    metric_name = "accuracy" if all(r["task"] == "classification" for r in records) else "RMSE (classification: accuracy)"
    cv = cfg.protocol.kind == "cv"
    where = "mean ± std over the cross-validation folds" if cv else "on the test split"
    pooled = "out-of-fold predictions" if cv else "test split"
    if cfg.protocol.kind == "kfold_ensemble":
        rows, cols = kfold_table(records)
        rep.heading("Results per model (k-fold training, ensemble on the test split)", 2)
        rep.table(rows, cols)
    if cfg.protocol.kind == "resample_ensemble":
        rows, cols = resample_table(records)
        rep.heading("Resample ensembles (out-of-bag score on the training split; sigma_net on the test split)", 2)
        rep.table(rows, cols)
    if cfg.report.tables == "astrospectra":
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
    flat = flat_rows(records)
    if flat:
        rep.heading("All cells", 2)
        if any("accuracy_lo" in row for row in flat):
            rep.paragraph("`_lo` / `_hi`: the 95 % bootstrap interval (2,000 resamples of the "
                          + ("pooled out-of-fold predictions" if cv else "test objects") + ").")
        rep.table(flat, list(dict.fromkeys(k for row in flat for k in row)))
        frame = pd.DataFrame(flat)
        frame.to_csv(out / "results.csv", index=False)
        frame.to_parquet(out / "results.parquet", index=False)
        for name in cfg.datasets:
            rows, cols = per_class_table(records, name)
            if rows:
                rep.heading(f"Per-class F1: {name}", 3)
                rep.table(rows, cols)
    baseline_section(rep, records, "on the same pooled out-of-fold predictions" if cv else "on the same test split")

    # figures
    if cfg.report.confusion_matrices:
        first_seed = cfg.protocol.seeds[0]
        cm_recs = [r for r in records if r["task"] == "classification" and r["seed"] == first_seed]
        if cm_recs:
            rep.heading(f"Confusion matrices ({pooled}, rows = true class)", 2)
        for r in cm_recs:
            path = fig_dir / f"cm_{r['dataset']}_{r['representation']}_{r['model']}.png"
            plots.plot_confusion_matrix(np.asarray(r["metrics"]["confusion_matrix"]), r["class_names"], path,
                                        title=f"{r['model']} | {r['representation']}-{r['dataset']}")
            rep.image(path.relative_to(out), f"{r['model']} on {r['representation']}-{r['dataset']}")
    if cfg.report.roc_curves:
        roc = [r for r in records if r.get("_proba") is not None and r["seed"] == cfg.protocol.seeds[0]]
        if roc:
            rep.heading(f"ROC curves ({pooled})", 2)
            for r in roc:
                proba = np.asarray(r["_proba"])
                path = fig_dir / f"roc_{r['dataset']}_{r['representation']}_{r['model']}.png"
                plots.plot_roc(np.asarray(r["_y_true"]), np.stack([1 - proba, proba], axis=1), r["class_names"], path)
                rep.image(path.relative_to(out), f"ROC: {r['model']} on {r['representation']}-{r['dataset']}")
    if cfg.report.embeddings:
        emb_done = False
        for name in cfg.datasets:
            data = prepared.get((name, cfg.protocol.seeds[0]))
            if data is None:
                loaded = runner._load(name)  # cached; loaded here when every cell was done before
                if not loaded:
                    continue
                train = loaded[0]
                inputs = {r: build_inputs(train, rc) for r, rc in cfg.representations.items()}
            else:
                train, inputs = data.train, data.inputs_train
            t = train.target(cfg.datasets[name].target)
            if t.kind != "class":
                continue
            for rname, arrays in inputs.items():
                X = flatten_inputs(arrays)
                for method in cfg.report.embeddings:
                    if not emb_done:
                        rep.heading("Embeddings of the data" if cv else "Embeddings of the training data", 2)
                        emb_done = True
                    path = fig_dir / f"{method}_{rname}_{name}.png"
                    plots.plot_embedding(X, t.values.read(), list(t.class_names), path, method=method, seed=0)
                    rep.image(path.relative_to(out), f"{method.upper()} of {rname}-{name}")

    results = {
        "name": cfg.name,
        "study": cfg.study,
        "command": runner.command,
        "protocol": cfg.protocol.model_dump(),
        "notes": runner.notes,
        "cells": [{k: v for k, v in r.items() if not k.startswith("_")} for r in records],
    }
    from astromodal.atomic import write_json

    write_json(out / "results.json", results)
    for hook in runner.report_hooks:
        hook(rep, runner)
    rep.write(out)
    return results
