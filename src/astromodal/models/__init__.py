"""Models: one registry (:mod:`astromodal.models.registry`) for neural and classical models."""

from astromodal.models.registry import build_model, count_parameters, get_model, list_models, register_model

__all__ = ["build_model", "count_parameters", "get_model", "list_models", "register_model"]
