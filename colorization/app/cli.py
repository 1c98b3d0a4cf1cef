"""Command-line wrapper of the entry points: expected errors become one line on stderr and exit 1; a run
stopped by a signal exits 130 (SIGINT) or 143 (SIGTERM) after saying how to resume (app.training)."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from colorization.app import runtime
from colorization.errors import ColorizationError, innermost

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
    """Errors that are the user's input or machine, not a bug: configuration, missing data, bad overrides,
    and the filesystem's OSErrors (no space left, no permission, not a directory, ...)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(err, ColorizationError | HydraException | OmegaConfBaseException | OSError):
        return True
    # Hydra wraps instantiation errors; look for one of ours underneath.
    cause = err.__cause__ or err.__context__
    return cause is not None and cause is not err and _is_expected(cause)


def _innermost_colorization_error(err: BaseException) -> BaseException:
    """The ColorizationError behind a chain of wrappers (e.g. Hydra's InstantiationException), else err."""
    return innermost(err) or err


class SweepJobError(ColorizationError):
    """A multirun job stopped on an expected error (already reported in one line); the sweep goes on."""


class _CliState:
    """What the command learnt while it ran: whether a task started, which sweep jobs ran and failed."""

    started = False
    jobs: list[str] = []
    failed: list[str] = []


def _report(err: BaseException, keep_traceback: bool, any_error: bool = False) -> bool:
    """Print the one-line message of an expected error (of any error with `any_error`, e.g. Hydra's own
    argument checks before the task starts); False when the error must propagate unchanged."""
    if keep_traceback or not (any_error or _is_expected(err)):
        return False
    print(f"error: {one_line(_innermost_colorization_error(err))}", file=sys.stderr, flush=True)
    return True


def report_errors(task: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a Hydra task function: an expected error inside it prints one line.

    A single run then exits with 1. A multirun job raises SweepJobError instead, which Hydra's launchers
    record as a failed job before they go on with the next one (a sweeper such as Optuna marks the trial
    failed); run_cli exits with 1 at the end of the sweep. (Caught here rather than above Hydra, which
    would first print "Error executing job ..." with a traceback itself.)
    """

    @functools.wraps(task)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _CliState.started = True
        job = runtime.multirun_job()
        if job is not None:
            _CliState.jobs.append(job)
        try:
            return task(*args, **kwargs)
        except Exception as err:  # noqa: BLE001 - decided by _is_expected
            if not _report(err, _user_wants_traceback()):
                raise
            if job is None:
                sys.exit(1)
            _CliState.failed.append(job)
            message = one_line(_innermost_colorization_error(err))
            raise SweepJobError(f"sweep job {job} failed: {message}") from None

    return wrapper


def _user_wants_traceback() -> bool:
    """True when the user (not us) set HYDRA_FULL_ERROR=1: keep full tracebacks then."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1" and os.environ.get(_MARK) != "1"


def _sweep_summary() -> str:
    """One line naming the failed jobs of a sweep run in this process."""
    failed = _CliState.failed
    total = max(len(_CliState.jobs), len(failed))
    return f"{len(failed)} of {total} sweep jobs failed: {', '.join(failed)}"


def run_cli(main: Callable[[], Any], script: str) -> None:
    """Run a `@hydra.main` function as a command: one-line errors and exit status 1 for expected failures.

    Hydra prints composition errors over several lines; we ask it to raise instead (HYDRA_FULL_ERROR)
    and condense them here. Anything raised before the task starts (composition, Hydra's own argument
    checks) is one line too. If the user set HYDRA_FULL_ERROR=1 themselves, tracebacks are kept. A sweep
    whose jobs failed ends with one line naming them and exit status 1, after every job has run.
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
        if isinstance(err, SweepJobError) and _CliState.failed:
            print(f"error: {_sweep_summary()}", file=sys.stderr, flush=True)
        elif not _report(err, user_wants_traceback, any_error=not _CliState.started):
            raise
        sys.exit(1)
    if _CliState.failed:
        print(f"error: {_sweep_summary()}", file=sys.stderr, flush=True)
        sys.exit(1)
