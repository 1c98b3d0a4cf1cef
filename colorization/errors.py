"""Errors the project raises on purpose: each carries a one-line message that tells the user what to do."""


class ColorizationError(Exception):
    """Base class: an expected failure whose message is shown to the user as one line, without a traceback."""


class DataUnavailableError(ColorizationError):
    """A dataset is missing or cannot be downloaded; the message says where to put the files."""


class ConfigError(ColorizationError, ValueError):
    """A configuration value is invalid; the message names the key and the allowed values.

    Also a ValueError: a bad argument of a plain class (a network, a colour-core function) is one too.
    """


class NonFiniteLossError(ColorizationError):
    """Training produced a NaN or infinite loss; the message names the step."""


def innermost(err: BaseException) -> ColorizationError | None:
    """The ColorizationError behind a chain of wrappers (e.g. Hydra's InstantiationException), or None."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, ColorizationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
