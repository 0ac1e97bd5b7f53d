"""astromodal: machine learning on multimodal astronomical survey data.

The public API in one place::

    import astromodal as am
    ds = am.simulate_survey(n=2000, seed=1)          # the built-in physical survey simulator
    ds.save("survey.h5"); ds = am.Dataset.load("survey.h5")
    train, test = ds.split(test_fraction=0.2, stratify="class", seed=0)
    am.list_models()                                   # every registered model

Heavy submodules (torch, astropy) are imported lazily so that ``import astromodal`` stays fast.
"""

from __future__ import annotations

from astromodal.errors import AstromodalError

__version__ = "0.1.0"

__all__ = ["AstromodalError", "Dataset", "simulate_survey", "list_models", "build_model", "__version__"]


def __getattr__(name: str):  # PEP 562 lazy attributes
    if name == "Dataset":
        from astromodal.data.dataset import Dataset

        return Dataset
    if name == "simulate_survey":
        from astromodal.data.simulate import simulate_survey

        return simulate_survey
    if name in ("list_models", "build_model"):
        from astromodal.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'astromodal' has no attribute {name!r}")
