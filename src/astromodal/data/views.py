"""Views: one named model input built from a :class:`~astromodal.data.dataset.Dataset`.

A representation (:class:`astromodal.experiments.RepresentationConfig`) is a mapping from input name to
a view, e.g. ``{gri: {kind: cutout, images: sdss, bands: [g, r, i]}, astrometry: {kind: columns,
columns: [parallax, pmra, pmdec]}}``; :meth:`Dataset.inputs` builds one array per name.

**The no-leak rule**: a view is computed per object from that object's data alone and is never
fitted (mean filter, per-spectrum normalisation, reshaping, band selection, area averaging). Nothing
computed here can carry information from one split into another. Any statistic that needs fitting
(standardising columns, context, targets) belongs to an estimator, fitted on the training split.

View kinds are registered in :data:`VIEWS`; adding one is one decorated class with ``build(ds)``::

    @VIEWS.register("my_kind")
    class MyView(View):
        kind: Literal["my_kind"] = "my_kind"
        spectra: str | None = None
        def build(self, ds): ...

Kinds: ``line`` (the 721-point LineAstroSpectra vector), ``spectrum_image`` (that vector as a
28 x 28 image), ``spectrum`` (a spectra block as is, optionally normalised per object), ``context``
(the raw [max, min] flux of a spectra block), ``columns`` (catalogue columns, shell patterns allowed)
and ``cutout`` (an images block: chosen bands, area-averaged size, optional asinh stretch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer

from astromodal.errors import ConfigError
from astromodal.registry import Registry

if TYPE_CHECKING:
    from astromodal.data.dataset import Dataset

#: view kind -> View subclass
VIEWS: Registry[type[View]] = Registry("view kind")


class View(BaseModel):
    """One model input, per object and never fitted (see the module doc)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    kind: str

    def build(self, ds: Dataset) -> np.ndarray:  # pragma: no cover - every kind overrides it
        raise NotImplementedError


def _block(blocks: dict[str, Any], name: str | None, what: str, kind: str) -> str:
    if name:
        return name
    if len(blocks) == 1:
        return next(iter(blocks))
    raise ConfigError(f"view {kind!r}: say which {what} block to use ('{what}:'); the dataset has {list(blocks)}")


@VIEWS.register("line")
class LineView(View):
    """The 721-point LineAstroSpectra vector (from a spectra block, or back from AstroSpectra-MNIST images)."""

    kind: Literal["line"] = "line"
    spectra: str | None = None
    images: str | None = None  # AstroSpectra-MNIST images read back to their vectors
    preprocessing: dict[str, Any] = Field(default_factory=dict)  # SpectrumPreprocessing settings

    def build(self, ds: Dataset) -> np.ndarray:
        from astromodal.transforms import spectra as sp

        if self.images:
            pixels = ds.images[self.images].pixels.read()
            return sp.from_image(pixels.reshape(len(pixels), -1)).astype(np.float32)
        settings = sp.SpectrumPreprocessing(**self.preprocessing)
        name = _block(ds.spectra, self.spectra, "spectra", self.kind)
        return sp.line_representation(ds, name, settings).astype(np.float32)


@VIEWS.register("spectrum_image")
class SpectrumImageView(View):
    """The 721-point line vector padded and reshaped to (1, 28, 28): the AstroSpectra-MNIST image."""

    kind: Literal["spectrum_image"] = "spectrum_image"
    spectra: str | None = None
    preprocessing: dict[str, Any] = Field(default_factory=dict)

    def build(self, ds: Dataset) -> np.ndarray:
        from astromodal.transforms import spectra as sp

        settings = sp.SpectrumPreprocessing(**self.preprocessing)
        name = _block(ds.spectra, self.spectra, "spectra", self.kind)
        return sp.image_representation(ds, name, settings).astype(np.float32)


def _raw_flux(ds: Dataset, spectra: str | None, kind: str) -> np.ndarray:
    name = _block(ds.spectra, spectra, "spectra", kind)
    return ds.arrays(spectra=name)["spectrum"].astype(np.float64)


@VIEWS.register("spectrum")
class SpectrumView(View):
    """A spectra block's flux as it is, optionally normalised per spectrum."""

    kind: Literal["spectrum"] = "spectrum"
    spectra: str | None = None
    normalise: Literal["none", "l2", "minmax", "median", "standard"] = "none"

    def build(self, ds: Dataset) -> np.ndarray:
        from astromodal.transforms import spectra as sp

        flux = _raw_flux(ds, self.spectra, self.kind)
        if self.normalise == "l2":
            flux = sp.l2_normalise(flux, ids=ds.ids.read())
        elif self.normalise != "none":
            flux = sp.normalise(flux, self.normalise)
        return flux.astype(np.float32)


@VIEWS.register("context")
class ContextView(View):
    """The raw [max, min] flux of each spectrum, (N, 2): the second input of the study C context models."""

    kind: Literal["context"] = "context"
    spectra: str | None = None

    def build(self, ds: Dataset) -> np.ndarray:
        from astromodal.transforms import spectra as sp

        return sp.context_features(_raw_flux(ds, self.spectra, self.kind)).astype(np.float32)


@VIEWS.register("columns")
class ColumnsView(View):
    """Catalogue columns (names or shell patterns such as ``xp_bp_*``), optionally L2-normalised per object."""

    kind: Literal["columns"] = "columns"
    columns: list[str]
    normalise: str = "none"  # none or l2 (per object, e.g. Gaia XP coefficients)

    @field_validator("normalise")
    @classmethod
    def _per_object(cls, v: str) -> str:
        if v not in ("none", "l2"):
            raise ValueError(f"normalise {v!r} is not per-object; use l2 or none (columns are standardised with "
                             "training statistics inside every estimator)")
        return v

    def build(self, ds: Dataset) -> np.ndarray:
        from astromodal.transforms import spectra as sp
        from astromodal.transforms.representations import expand_columns

        values = ds.arrays(columns=expand_columns(ds, self.columns))["columns"].astype(np.float64)
        if self.normalise == "l2":
            values = sp.l2_normalise(values)
        return values.astype(np.float32)


@VIEWS.register("cutout")
class CutoutView(View):
    """An images block (survey cutouts, AstroSpectra-MNIST PNGs): chosen bands, size by area averaging, and
    optionally an asinh stretch per pixel, ``asinh(x / softening)`` (Lupton et al. 1999: linear for
    ``|x| << softening``, logarithmic above; ``softening`` in the images' unit, about the sky noise per pixel,
    e.g. 0.05 nanomaggies for SDSS), which brings the faint and the bright objects of a survey onto one
    scale. The stretch is a fixed function of each pixel: nothing is fitted (the no-leak rule)."""

    kind: Literal["cutout"] = "cutout"
    images: str | None = None
    bands: list[str] | None = None
    size: int | None = Field(default=None, ge=1)
    stretch: Literal["none", "asinh"] = "none"
    softening: float = Field(default=0.05, gt=0)

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        # without a stretch the dump is the one before stretches existed (fingerprints unchanged)
        data = handler(self)
        if self.stretch == "none":
            data.pop("stretch", None)
            data.pop("softening", None)
        return data

    def build(self, ds: Dataset) -> np.ndarray:
        im = ds.images[_block(ds.images, self.images, "images", self.kind)]
        if self.bands:
            im = im.select_bands(self.bands)
        if self.size and self.size != im.size:
            im = im.downsample(self.size)
        pixels = im.pixels.read()
        if self.stretch == "asinh":
            return np.arcsinh(pixels / self.softening).astype(np.float32)
        # pixels read from disk are a fresh array: no second copy (in memory, read() may share the dataset's)
        return pixels.astype(np.float32, copy=not im.pixels.is_lazy)


def view_class(kind: Any) -> type[View]:
    """The View class of ``kind`` (an unknown kind is one line listing the registered kinds)."""
    return VIEWS.get(kind)
