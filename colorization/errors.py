"""Errors the project raises on purpose: each carries a one-line message that tells the user what to do."""


class ColorizationError(Exception):
    """Base class: an expected failure whose message is shown to the user as one line, without a traceback."""


class DataUnavailableError(ColorizationError):
    """A dataset is missing or cannot be downloaded; the message says where to put the files."""


class ConfigError(ColorizationError):
    """A configuration value is invalid; the message names the key and the allowed values."""


class NonFiniteLossError(ColorizationError):
    """Training produced a NaN or infinite loss; the message names the step."""
