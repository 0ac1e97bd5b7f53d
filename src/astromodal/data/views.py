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
``cutout`` (an images block: chosen bands, area-averaged size, optional asinh stretch, optional isolation of
the central object), ``rgb`` (Lupton composites) and ``aperture_photometry`` (circular-aperture fluxes,
asinh magnitudes and colours at the cutout centre: the photometry baseline of study D).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from astromodal.errors import ConfigError
from astromodal.registry import Registry
from astromodal.transforms.isolation import IsolationSettings

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

        if self.normalise == "none":  # read straight into float32 (a float64 copy would round back to the same)
            name = _block(ds.spectra, self.spectra, "spectra", self.kind)
            return np.asarray(ds.arrays(spectra=name)["spectrum"], dtype=np.float32)
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


Isolate = Literal["none", "mask", "crop"]


class _Isolating(View):
    """The ``isolate`` / ``isolate_options`` pair shared by the image views (module doc of
    :mod:`astromodal.transforms.isolation`): applied to every band of the images block on its native pixels,
    before band selection, resizing and stretching, so two views of one block mask the same pixels; the
    noise of each object is seeded by ``[seed, object id]`` (the same in any subset). Without it
    (``isolate: none``) both keys are left out of the dump, so existing fingerprints do not change."""

    isolate: Isolate = "none"
    isolate_options: IsolationSettings | None = None

    @model_validator(mode="after")
    def _options_need_a_method(self) -> _Isolating:
        if self.isolate == "none" and self.isolate_options is not None:
            raise ValueError("'isolate_options' given but 'isolate' is none; set isolate: mask or crop")
        return self

    def _drop_isolation(self, data: dict[str, Any]) -> dict[str, Any]:
        if self.isolate == "none":
            data.pop("isolate", None)
            data.pop("isolate_options", None)
        elif data.get("isolate_options") is None:
            data["isolate_options"] = IsolationSettings().model_dump()  # the defaults, spelled out
        return data

    def _images(self, ds: Dataset) -> tuple[str, Any]:
        name = _block(ds.images, self.images, "images", self.kind)  # type: ignore[attr-defined]
        im = ds.images[name]
        if self.isolate != "none":
            from astromodal.transforms.isolation import isolate_images

            im, _ = isolate_images(im, self.isolate, self.isolate_options, keys=ds.ids.read())
        return name, im


@VIEWS.register("cutout")
class CutoutView(_Isolating):
    """An images block (survey cutouts, AstroSpectra-MNIST PNGs): chosen bands, size by area averaging, and
    optionally an asinh stretch per pixel, ``asinh(x / softening)`` (Lupton et al. 1999: linear for
    ``|x| << softening``, logarithmic above; ``softening`` in the images' unit, about the sky noise per pixel,
    e.g. 0.05 nanomaggies for SDSS), which brings the faint and the bright objects of a survey onto one
    scale. The stretch is a fixed function of each pixel: nothing is fitted (the no-leak rule).

    ``isolate``: ``none`` (default), ``mask`` (other objects replaced by background noise) or ``crop``
    (everything outside the central object's footprint set to the background level; the size is kept), with
    ``isolate_options`` the settings of :class:`~astromodal.transforms.isolation.IsolationSettings`; it runs
    first, on the native pixels of all the block's bands (see :class:`_Isolating`)."""

    kind: Literal["cutout"] = "cutout"
    images: str | None = None
    bands: list[str] | None = None
    size: int | None = Field(default=None, ge=1)
    stretch: Literal["none", "asinh"] = "none"
    softening: float = Field(default=0.05, gt=0)

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        # without a stretch the dump is the one before stretches existed (fingerprints unchanged); the same
        # for the isolation
        data = handler(self)
        if self.stretch == "none":
            data.pop("stretch", None)
            data.pop("softening", None)
        return self._drop_isolation(data)

    def build(self, ds: Dataset) -> np.ndarray:
        _, im = self._images(ds)
        if self.bands:
            im = im.select_bands(self.bands)
        if self.size and self.size != im.size:
            im = im.downsample(self.size)
        pixels = im.pixels.read()
        if self.stretch == "asinh":
            return np.arcsinh(pixels / self.softening).astype(np.float32)
        # pixels read from disk are a fresh array: no second copy (in memory, read() may share the dataset's)
        return pixels.astype(np.float32, copy=not im.pixels.is_lazy)


PhotometryOutput = Literal["fluxes", "magnitudes", "colours"]


@VIEWS.register("aperture_photometry")
class AperturePhotometryView(_Isolating):
    """Circular-aperture photometry at the cutout centre ((S - 1) / 2) of an images block: the photometry
    baseline of study D, (N, F) float32.

    ``radii`` in arcsec (default 1.5 and 3.0), converted to pixels with the block's ``pixel_scale``; each
    aperture must fit in the cutout (radius <= S / 2 px). The flux in each band is the exact-overlap
    weighted sum of photutils ``CircularAperture(...).to_mask(method="exact")``
    (:func:`~astromodal.transforms.isolation.aperture_fluxes`: the numbers of photutils
    ``aperture_photometry``, as one weighted sum over all cutouts). ``outputs`` (in the order given; default
    magnitudes then colours), each for every radius in turn:

    * ``fluxes``: per band, in the images' unit (nanomaggies);
    * ``magnitudes``: asinh magnitudes (Lupton, Gunn & Szalay 1999) per band with softening ``b`` in maggies
      (default SDSS: u 1.4e-10, g 0.9e-10, r 1.2e-10, i 1.8e-10, z 7.4e-10; ``softening: {band: b}`` for
      other bands), finite for zero and negative fluxes;
    * ``colours``: the differences of those magnitudes between adjacent bands in the order of ``bands``
      (u-g, g-r, r-i, i-z) followed by the magnitude of ``reference`` (default r), so a colour set stands
      alone (with ``magnitudes`` too, that magnitude appears twice).

    ``bands`` default: the block's bands. :meth:`feature_names` names the F columns. ``isolate`` as in the
    cutout view. Everything is a fixed function of one cutout: nothing is fitted (the no-leak rule); no
    aperture correction is applied (the fluxes are those inside the aperture, not totals).
    """

    kind: Literal["aperture_photometry"] = "aperture_photometry"
    images: str | None = None
    bands: list[str] | None = None
    radii: list[float] = Field(default_factory=lambda: [1.5, 3.0], min_length=1)
    outputs: list[PhotometryOutput] = Field(default_factory=lambda: ["magnitudes", "colours"], min_length=1)
    softening: dict[str, float] | None = None
    reference: str = "r"

    @field_validator("radii")
    @classmethod
    def _positive(cls, v: list[float]) -> list[float]:
        if any(not (np.isfinite(r) and r > 0) for r in v):
            raise ValueError(f"aperture radii (arcsec) must be positive, got {v}")
        return [float(r) for r in v]

    @field_validator("outputs")
    @classmethod
    def _distinct(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"outputs repeat an entry: {v}")
        return v

    @field_validator("softening")
    @classmethod
    def _soft(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is not None and any(not (np.isfinite(b) and b > 0) for b in v.values()):
            raise ValueError(f"softening values (maggies) must be positive, got {v}")
        return v

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if self.softening is None:
            data.pop("softening", None)
        return self._drop_isolation(data)

    def _bands(self, ds: Dataset) -> tuple[str, list[str]]:
        name = _block(ds.images, self.images, "images", self.kind)
        have = list(ds.images[name].bands)
        bands = list(self.bands) if self.bands else have
        missing = [b for b in bands if b not in have]
        if missing:
            raise ConfigError(f"view 'aperture_photometry' option 'bands': images {name!r} have no band(s) "
                              f"{missing}; they have {have}")
        if "colours" in self.outputs and self.reference not in bands:
            raise ConfigError(f"view 'aperture_photometry' option 'reference': band {self.reference!r} is not among "
                              f"the bands {bands}")
        return name, bands

    def feature_names(self, ds: Dataset) -> list[str]:
        """The names of the F output columns, e.g. ``mag_r_3.0``, ``g-r_3.0`` (radius in arcsec)."""
        _, bands = self._bands(ds)
        names: list[str] = []
        for out in self.outputs:
            for r in self.radii:
                if out == "fluxes":
                    names += [f"flux_{b}_{r:g}" for b in bands]
                elif out == "magnitudes":
                    names += [f"mag_{b}_{r:g}" for b in bands]
                else:
                    names += [f"{a}-{b}_{r:g}" for a, b in zip(bands[:-1], bands[1:], strict=True)] + [f"mag_{self.reference}_{r:g}"]
        return names

    def build(self, ds: Dataset) -> np.ndarray:
        from astromodal.transforms import isolation as iso

        name, bands = self._bands(ds)
        im = ds.images[name]
        size = im.size
        radii_pix = [r / im.pixel_scale for r in self.radii]
        too_big = [r for r, p in zip(self.radii, radii_pix, strict=True) if p > size / 2.0]
        if too_big:
            raise ConfigError(f"view 'aperture_photometry' option 'radii': {too_big} arcsec do not fit in the "
                              f"{size}-pixel cutouts of images {name!r} (largest radius {size / 2 * im.pixel_scale:g} "
                              f"arcsec at {im.pixel_scale:g} arcsec/px)")
        soft = None
        if "magnitudes" in self.outputs or "colours" in self.outputs:
            table = {**iso.SDSS_SOFTENING, **(self.softening or {})}
            lacking = [b for b in bands if b not in table]
            if lacking:
                raise ConfigError(f"view 'aperture_photometry' option 'softening': no asinh softening for band(s) "
                                  f"{lacking} (SDSS values exist for {list(iso.SDSS_SOFTENING)}); give softening: "
                                  "{band: b in maggies}")
            soft = np.array([table[b] for b in bands])
        _, im = self._images(ds)
        pixels = im.pixels.read()[:, [im.band_index(b) for b in bands]]
        flux = iso.aperture_fluxes(pixels, radii_pix).transpose(0, 2, 1)  # (N, R, B)
        mags = iso.asinh_magnitudes(flux, soft) if soft is not None else None
        parts = []
        for out in self.outputs:
            if out == "fluxes":
                parts.append(flux.reshape(len(flux), -1))
            elif out == "magnitudes":
                parts.append(mags.reshape(len(flux), -1))
            else:
                ref = mags[:, :, bands.index(self.reference)][:, :, None]
                parts.append(np.concatenate([mags[:, :, :-1] - mags[:, :, 1:], ref], axis=2).reshape(len(flux), -1))
        return np.concatenate(parts, axis=1).astype(np.float32)


class RoiSettings(BaseModel):
    """The ROI crop of an ``rgb`` view (:func:`astromodal.transforms.images.roi_side`): the paper's l, alpha, beta."""

    model_config = ConfigDict(extra="forbid")
    l: int = Field(default=6, ge=1)  # noqa: E741 (the paper's name)
    alpha: float = 0.05
    beta: float = Field(default=0.2, ge=0, le=1)
    variant: Literal["paper", "ring", "extent", "public_code"] = "paper"


@VIEWS.register("rgb")
class RGBView(View):
    """A Lupton et al. (2004) RGB composite of 3 or 2 bands of an images block (MESCR's ``gri`` and ``urz``):
    (N, 3, size, size) float32 in [0, 1], from astropy ``make_lupton_rgb`` with ``Q``, ``stretch``, ``minimum``
    (study: 8, 0.5, 0) as 8-bit values / 255 (:func:`astromodal.transforms.images.lupton_rgb`; channels in
    RGB order, the reddest band red; a 2-band part ``uz`` is (u, mean, z)).

    ``roi``: ``false`` (none), ``true`` (the paper's ROI crop, l = 6, alpha = 0.05, beta = 0.2) or the
    settings ``{l, alpha, beta, variant}``: the window is found on the r band's intensity in the Lupton
    ``gri`` image (its green channel, 0..1; so the images need g, r and i), the same window for every
    part of an object, and the crop is resized to ``size``. ``size`` (default the images' side): bilinear up,
    area down. Every step is a fixed per-pixel or per-object function: nothing is fitted (the no-leak rule).
    """

    kind: Literal["rgb"] = "rgb"
    images: str | None = None
    bands: str
    Q: float = Field(default=8.0, gt=0)
    stretch: float = Field(default=0.5, gt=0)
    minimum: float = 0.0
    roi: RoiSettings | None = None
    size: int | None = Field(default=None, ge=1)

    @field_validator("bands", mode="before")
    @classmethod
    def _part(cls, v: Any) -> str:
        from astromodal.transforms.images import check_part

        text = "".join(v) if isinstance(v, (list, tuple)) else str(v)
        try:
            return check_part(text)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("roi", mode="before")
    @classmethod
    def _roi(cls, v: Any) -> Any:
        if v is True:
            return {}
        return None if v is False else v  # true and the defaults dump alike: one fingerprint

    def build(self, ds: Dataset) -> np.ndarray:
        from astromodal.transforms import images as tim

        im = ds.images[_block(ds.images, self.images, "images", self.kind)]
        pixels = im.pixels.read()
        lupton = {"Q": self.Q, "stretch": self.stretch, "minimum": self.minimum}
        rgb = tim.lupton_rgb(pixels, im.bands, self.bands, **lupton)
        size = self.size or rgb.shape[-1]
        if self.roi is None:
            return tim.resize_images(rgb, size)
        r = rgb[:, 1] if self.bands == "gri" else tim.lupton_rgb(pixels, im.bands, "gri", **lupton)[:, 1]
        out, _ = tim.roi_crop(rgb, r, size, **self.roi.model_dump())
        return out


def view_class(kind: Any) -> type[View]:
    """The View class of ``kind`` (an unknown kind is one line listing the registered kinds)."""
    return VIEWS.get(kind)
