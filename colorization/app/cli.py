"""Command-line wrapper of the entry points: expected errors become one line on stderr and exit 1."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from colorization.errors import ColorizationError

_MARK = "COLORIZATION_SET_HYDRA_FULL_ERROR"


def one_line(err: BaseException) -> str:
    """A one-line message for an error: Hydra's multi-line composition errors are condensed."""
    from hydra.errors import MissingConfigException

    if isinstance(err, MissingConfigException) and err.missing_cfg_file and err.options is not None:
        missing = str(err.missing_cfg_file)
        group, _, option = missing.rpartition("/")
        if group:
            options = ", ".join(sorted(str(o) for o in err.options))
            return f"{group}={option} is not an option of '{group}'; allowed values: {options}"
    text = str(err).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    # Hydra's messages put the useful part first; an OmegaConf cause (full key) is appended.
    message = lines[0]
    if len(lines) > 1 and lines[1].startswith(("full_key", "Available options")):
        message = f"{message} ({lines[1]})"
    cause = err.__cause__
    if cause is not None and str(cause).strip() and str(cause).strip().splitlines()[0] not in message:
        message = f"{message}: {str(cause).strip().splitlines()[0]}"
    return message


def _is_expected(err: BaseException) -> bool:
    """Errors that are the user's input, not a bug: configuration, missing data, bad overrides."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(err, ColorizationError | HydraException | OmegaConfBaseException):
        return True
    # Hydra wraps instantiation errors; look for one of ours underneath.
    cause = err.__cause__ or err.__context__
    return cause is not None and cause is not err and _is_expected(cause)


def _innermost_colorization_error(err: BaseException) -> BaseException:
    """The ColorizationError behind a chain of wrappers (e.g. Hydra's InstantiationException), else err."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if isinstance(current, ColorizationError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return err


def report_errors(task: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a Hydra task function: an expected error inside it prints one line and exits with 1.

    (Caught here rather than above Hydra, which would first print "Error executing job ..." itself.)
    """

    @functools.wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return task(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - decided by _is_expected
            if _user_wants_traceback() or not _is_expected(err):
                raise
            print(f"error: {one_line(_innermost_colorization_error(err))}", file=sys.stderr, flush=True)
            sys.exit(1)

    return wrapper


def _user_wants_traceback() -> bool:
    """True when the user (not us) set HYDRA_FULL_ERROR=1: keep full tracebacks then."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1" and os.environ.get(_MARK) != "1"


def run_cli(main: Callable[[], Any], script: str) -> None:
    """Run a `@hydra.main` function as a command: one-line errors and exit status 1 for expected failures.

    Hydra prints composition errors over several lines; we ask it to raise instead (HYDRA_FULL_ERROR)
    and condense them here. If the user set HYDRA_FULL_ERROR=1 themselves, tracebacks are kept.
    """
    os.environ.setdefault("COLORIZATION_ROOT", str(Path(script).resolve().parent))
    user_wants_traceback = _user_wants_traceback()  # a DDP child inherits our setting, not the user's
    os.environ["HYDRA_FULL_ERROR"] = "1"
    os.environ[_MARK] = "1"
    try:
        main()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as err:  # noqa: BLE001 - the command's last line of defence
        if user_wants_traceback or not _is_expected(err):
            raise
        print(f"error: {one_line(_innermost_colorization_error(err))}", file=sys.stderr)
        sys.exit(1)
