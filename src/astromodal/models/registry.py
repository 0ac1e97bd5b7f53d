"""The model registry: adding a model is one decorated class (or factory).

Neural models are ``torch.nn.Module`` subclasses decorated with :func:`register_model`. Their
constructor takes ``input_shape`` (the per-object shape of their main input, without the batch axis:
``(L,)`` for a spectrum, ``(C, H, W)`` for an image, ``(F,)`` for catalogue columns) and ``n_outputs``
(number of classes, or 1 for a binary logit or a single regression output) plus model options.
``forward`` takes keyword tensors named after the inputs listed in the class attribute
``inputs`` (for example ``("spectrum", "context")``); the trainer calls ``model(**batch_inputs)``.
A fusion model whose constructor takes ``inputs`` gets its input names from the model option
``inputs`` instead (per instance: ``options: {inputs: [gri, urz, astrometry]}``);
:meth:`ModelSpec.declared_inputs` reports them, and the benchmark runner checks them against each
representation's input names from the config alone.

Classical (scikit-learn) models register a factory returning an unfitted estimator.

    @register_model("cnn1d", modality="spectrum", study="C", description="...")
    class CNN1D(nn.Module):
        inputs = ("spectrum",)
        def __init__(self, input_shape, n_outputs=1): ...
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from astromodal.errors import ConfigError
from astromodal.registry import Registry

MODALITIES = ("spectrum", "image", "columns", "multimodal")
FAMILIES = ("neural", "classical")

# Modules whose import registers models. A new model module is added here once.
_MODEL_MODULES = (
    "astromodal.models.classical",
    "astromodal.models.spectra1d",
    "astromodal.models.images2d",
    "astromodal.models.tabular",
    "astromodal.models.fusion",
    "astromodal.models.scnet",
)


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one model."""

    name: str
    factory: Callable[..., Any]
    family: str  # "neural" or "classical"
    modality: str  # main input: "spectrum", "image", "columns" or "multimodal"
    tasks: tuple[str, ...] = ("classification",)
    study: str | None = None
    description: str = ""
    default_options: dict[str, Any] = field(default_factory=dict)

    def declared_inputs(self, options: dict[str, Any] | None = None) -> tuple[str, ...] | None:
        """The input names a neural model with ``options`` reads: the option ``inputs`` (a list, for fusion
        models whose constructor takes it) or else the class attribute ``inputs`` (default ``("columns",)``);
        a factory with its own ``declared_inputs(options)`` (``mmscnet``) answers for itself.
        None for classical models, which read every input flattened side by side."""
        if self.family != "neural":
            return None
        hook = getattr(self.factory, "declared_inputs", None)
        if callable(hook):  # names from the model's own options (mmscnet: branches, numeric_input, numeric)
            return tuple(hook(options or {}))
        chosen = (options or {}).get("inputs")
        if chosen is not None:
            if isinstance(chosen, str) or not all(isinstance(c, str) for c in chosen) or not chosen:
                raise ConfigError(f"model {self.name!r}: option 'inputs' must be a list of input names, not {chosen!r}")
            return tuple(chosen)
        return tuple(getattr(self.factory, "inputs", ("columns",)))

    def build(self, **kwargs: Any) -> Any:
        """Instantiate the model (neural: ``input_shape=..., n_outputs=...``; classical: options)."""
        options = {**self.default_options, **kwargs}
        return self.factory(**options)


#: model name -> :class:`ModelSpec` (the model modules are imported on the first lookup)
MODELS: Registry[ModelSpec] = Registry("model", modules=_MODEL_MODULES)
_REGISTRY = MODELS  # the older name, still read by tests of the estimator and cross-validation


def register_model(
    name: str,
    *,
    modality: str,
    family: str = "neural",
    tasks: tuple[str, ...] = ("classification",),
    study: str | None = None,
    description: str = "",
    **default_options: Any,
) -> Callable[[Any], Any]:
    """Class/function decorator adding a model to the registry under ``name``."""
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {MODALITIES}, not {modality!r}")
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, not {family!r}")

    def decorator(obj: Any) -> Any:
        doc = description or (obj.__doc__ or "").strip().split("\n")[0]
        MODELS.add(name, ModelSpec(name, obj, family, modality, tuple(tasks), study, doc, dict(default_options)))
        return obj

    return decorator


def list_models(family: str | None = None, modality: str | None = None, study: str | None = None) -> list[ModelSpec]:
    """Every registered model, optionally filtered, sorted by name."""
    return [
        s
        for s in MODELS.values()
        if (family is None or s.family == family)
        and (modality is None or s.modality == modality)
        and (study is None or s.study == study)
    ]


def get_model(name: str) -> ModelSpec:
    """The spec of model ``name``; an unknown name is an error listing the known ones."""
    return MODELS.get(name)


def suggest_models(name: str, task: str) -> list[str]:
    """Registered models to use for ``task`` in place of ``name`` (which is not registered for it):
    ``[name + "_regressor"]`` (or without the suffix for classification) when registered, else up to three
    models of the same family and modality that do ``task``, most similar name first ([] when none)."""
    import difflib

    spec = get_model(name)
    twin = name + "_regressor" if task == "regression" else name.removesuffix("_regressor")
    if twin != name and twin in MODELS and task in MODELS.get(twin).tasks:
        return [twin]
    pool = [s.name for s in list_models(family=spec.family, modality=spec.modality) if task in s.tasks]
    pool.sort(key=lambda n: (-difflib.SequenceMatcher(None, name, n).ratio(), n))
    return pool[:3]


def build_model(name: str, **kwargs: Any) -> Any:
    """Instantiate registered model ``name`` (see :meth:`ModelSpec.build`)."""
    return get_model(name).build(**kwargs)


def count_parameters(model: Any) -> int | None:
    """Number of trainable parameters of a torch module (None for non-torch models)."""
    params = getattr(model, "parameters", None)
    if params is None or not callable(params):
        return None
    try:
        return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
    except TypeError:  # sklearn estimators have no parameters() of this kind
        return None
