"""A probe on frozen embeddings: an encoder trained without labels, then a model on its embeddings.

The ``pretrain_probe`` protocol (study D's contrastive image-spectrum model) fits the encoder with its
own objective (e.g. ``objective: contrastive``: symmetric InfoNCE between the image and the spectrum
embeddings, no target used), freezes it, and fits a *probe* (``kneighbors_regressor``, ``ridge``,
``mlp_regressor``, ``logistic_regression``, ``mlp_columns``, ...) on the embeddings of the training objects.
:class:`ProbeEstimator` joins the two behind the estimator front: every prediction reads the encoder's
embeddings of ``X`` (all of them side by side, as one ``columns`` input) and asks the probe.

Saved as ``probe.json`` + ``encoder/`` + ``probe/`` (each a saved estimator folder; the encoder's
weights load with ``weights_only=True``, a scikit-learn probe only with ``trust``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

#: the input name the probe reads (the encoder's embeddings, side by side)
PROBE_INPUT = "columns"


def embedding_matrix(encoder: Any, X: Any) -> np.ndarray:
    """The encoder's embeddings of ``X`` side by side, (N, sum of D), in the order of its outputs."""
    embeddings = encoder.transform(X)
    return np.concatenate([np.asarray(e.vectors, dtype=np.float32) for e in embeddings.values()], axis=1)


class ProbeEstimator:
    """A fitted ``encoder`` (its ``transform`` gives embeddings) and a ``probe`` fitted on them."""

    kind = "probe"

    def __init__(self, encoder: Any, probe: Any):
        self.encoder = encoder
        self.probe = probe

    # ---- what the benchmark reads: the probe's task, classes, heads; the encoder's training history
    @property
    def task(self) -> str:
        return self.probe.task

    @property
    def classes_(self) -> Any:
        return self.probe.classes_

    @property
    def head_names(self) -> list[str]:
        return list(self.probe.head_names)

    @property
    def history(self) -> Any:
        return self.encoder.history

    @property
    def n_parameters(self) -> int | None:
        n = [getattr(m, "n_parameters", None) for m in (self.encoder, self.probe)]
        return None if n[0] is None else int(n[0]) + int(n[1] or 0)

    @property
    def gives_variance(self) -> bool:
        return bool(getattr(self.probe, "gives_variance", False))

    @property
    def threshold(self) -> float | None:
        return getattr(self.probe, "threshold", None)

    def embed(self, X: Any) -> dict[str, np.ndarray]:
        """The probe's input: ``{"columns": embeddings side by side}``."""
        return {PROBE_INPUT: embedding_matrix(self.encoder, X)}

    def transform(self, X: Any) -> dict[str, Any]:
        return self.encoder.transform(X)

    def predict_heads(self, X: Any) -> dict[str, Any]:
        return self.probe.predict_heads(self.embed(X))

    def predict(self, X: Any) -> np.ndarray:
        return self.probe.predict(self.embed(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        return self.probe.predict_proba(self.embed(X))

    def predict_mean_var(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        return self.probe.predict_mean_var(self.embed(X))

    # ---- persistence
    def save(self, folder: str | Path) -> Path:
        from astromodal.atomic import write_json

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.encoder.save(folder / "encoder")
        self.probe.save(folder / "probe")
        write_json(folder / "probe.json", {"kind": self.kind, "encoder": "encoder", "probe": "probe",
                                           "input": PROBE_INPUT})
        return folder

    @classmethod
    def load(cls, folder: str | Path, trust: bool = False) -> ProbeEstimator:
        from astromodal.training.estimator import load_estimator, read_meta

        folder = Path(folder)
        meta = read_meta(folder, "probe.json", cls.kind, "an astromodal probe")
        return cls(load_estimator(folder / str(meta.get("encoder", "encoder")), trust=trust),
                   load_estimator(folder / str(meta.get("probe", "probe")), trust=trust))


def retrieval_scores(embeddings: dict[str, Any], ks: tuple[int, ...] = (1, 5)) -> dict[str, Any] | None:
    """Cross-modal retrieval on paired embeddings (two outputs a, b of the same N objects): for each object
    the rank of its own b among all b by cosine similarity to its a; top-k fractions for a -> b and b -> a,
    with chance level k / N. None unless there are exactly two embeddings."""
    if len(embeddings) != 2:
        return None
    (name_a, a), (name_b, b) = ((k, np.asarray(v.vectors, dtype=np.float64)) for k, v in embeddings.items())
    n = len(a)
    if n == 0:
        return None
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    sim = a @ b.T
    own = np.diag(sim)
    rank_ab = (sim > own[:, None]).sum(axis=1)  # 0 = its own partner is the best match
    rank_ba = (sim.T > own[:, None]).sum(axis=1)
    out: dict[str, Any] = {"pair": [name_a, name_b], "n": int(n)}
    for k in ks:
        out[f"top{k}_{name_a}_to_{name_b}"] = float(np.mean(rank_ab < k))
        out[f"top{k}_{name_b}_to_{name_a}"] = float(np.mean(rank_ba < k))
        out[f"chance_top{k}"] = min(1.0, k / n)
    return out
