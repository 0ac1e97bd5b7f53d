"""One exception type for every user-facing failure.

Every error a user can cause (a corrupt file, a NaN flux, an unknown band or class, a bad config key)
is raised as :class:`AstromodalError` (or a subclass) with a message that names the file, row, option
or key at fault. The CLI prints the message as one line and exits with status 1; Python users can catch
it. Internal bugs stay ordinary exceptions so that they show a traceback.
"""

from __future__ import annotations


class AstromodalError(Exception):
    """A problem with the user's input, named precisely (file, row, option or key)."""


class DataFormatError(AstromodalError):
    """A file is not of the expected format, is truncated, or has an incompatible schema."""


class BadValueError(AstromodalError):
    """Values that cannot be used: NaN/inf fluxes, unknown labels or band names, wrong shapes."""


class ConfigError(AstromodalError):
    """An experiment config or command-line option is invalid."""
