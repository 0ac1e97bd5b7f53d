"""``astromodal benchmark CONFIG``: run an experiment config's grid and write its report."""

from __future__ import annotations

from pathlib import Path

import typer

from astromodal.cli import app
from astromodal.cli.common import out_console


@app.command("benchmark")
def benchmark_command(
    config: Path = typer.Argument(..., help="Experiment config (YAML), e.g. experiments/astrospectra_mnist_sim.yaml."),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder (default: the config's 'output', else runs/<name>)."),
    device: str = typer.Option(None, help="Device for neural models: cpu, cuda, cuda:1, mps or auto (overrides the config)."),
    precision: str = typer.Option(None, help="Numeric precision for neural models: 32, bf16-mixed or 16-mixed (CUDA). "
                                  "bf16-mixed also speeds up training on CPUs with AVX512-BF16 or AMX."),
    channels_last: bool = typer.Option(None, "--channels-last/--no-channels-last",
                                       help="Train image models in the channels-last memory layout (faster "
                                            "convolutions, most of all with bf16-mixed; overrides the config)."),
    resume: bool = typer.Option(True, help="Reuse finished cells in an output folder an earlier benchmark run wrote "
                                "(--no-resume trains everything again; with an existing folder it needs --overwrite)."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Write into an output folder another astromodal run wrote (another verb, or "
                                        "with --no-resume). A folder astromodal did not write, one holding the config or "
                                        "its data, '.', '~' and '/' are always refused."),
    set_: list[str] = typer.Option(None, "--set", help="Override a config value, e.g. --set trainer.max_epochs=5 (YAML value)."),
    quick: bool = typer.Option(False, "--quick",
                               help="Smoke run: every cell through the same code path on a tiny budget (at most "
                                    "300 objects per dataset, 1 epoch, no early stopping, k = 2 folds, 2 resample "
                                    "members), written to <output>-quick (default runs/<name>-quick); the report "
                                    "says it is a quick run."),
) -> None:
    """Train and evaluate every dataset x representation x model x seed cell of CONFIG.

    Writes results.json, results.csv/.parquet, confusion matrices, ROC curves, PCA/t-SNE plots and
    report.md/report.html. Finished cells are kept in OUT/cells/, so a re-run resumes where it stopped.
    """
    import yaml

    from astromodal.errors import ConfigError
    from astromodal.evaluation.benchmark import QUICK_NOTE, BenchmarkRunner, quick_overrides
    from astromodal.experiments import load_config

    overrides = {}
    for item in set_ or []:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        overrides[key] = yaml.safe_load(value)
    cfg = load_config(config, overrides)
    if quick:
        cfg = quick_overrides(cfg)
    out = out or Path(cfg.output or Path("runs") / cfg.name)
    runner = BenchmarkRunner(cfg, out, config_path=config, device=device, precision=precision,
                             channels_last=channels_last, resume=resume, overwrite=overwrite)
    if quick:
        runner.notes.append(QUICK_NOTE)
    results = runner.run()
    _print_summary(results)
    out_console.print(f"report: {out / 'report.md'}  (and report.html, results.json)")


def _print_summary(results: dict) -> None:
    """The final summary (a result: stdout): one line per cell with its main score."""
    for c in results.get("cells", []):
        metrics = c.get("metrics") or {}
        key = next((k for k in ("accuracy", "r2", "macro_f1", "rmse") if k in metrics), None)
        score = f"{key} {metrics[key]:.3f}" if key is not None and isinstance(metrics[key], (int, float)) else ""
        name = "  ".join(str(c.get(k, "")) for k in ("dataset", "representation", "model"))
        seed = f"  seed {c['seed']}" if "seed" in c else ""
        heads = c.get("heads") or {}
        if len(heads) > 1:  # several heads: each head's headline score
            score = "  ".join(f"{h}: {_headline(m.get('metrics') or {})}" for h, m in heads.items())
        out_console.print(f"  {name}{seed}  {score}".rstrip(), highlight=False)


def _headline(metrics: dict) -> str:
    key = next((k for k in ("accuracy", "mae", "rmse") if isinstance(metrics.get(k), (int, float))), None)
    return "" if key is None else f"{key} {metrics[key]:.3f}"
