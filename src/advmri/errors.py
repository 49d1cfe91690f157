"""Errors that users see: one line naming what is wrong, where, and what stays safe."""


class AdvmriError(Exception):
    """Base class for every error advmri raises on bad input; its message is one line."""


class ConfigError(AdvmriError):
    """The configuration does not match the schema or is inconsistent."""


class DataError(AdvmriError):
    """A scan or dataset file is missing, corrupt or of the wrong shape."""


class TrainingError(AdvmriError):
    """Training cannot go on (a NaN loss, a checkpoint of other settings)."""
