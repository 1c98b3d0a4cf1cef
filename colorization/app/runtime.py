"""The one reader of Hydra's runtime: sweep facts, command-line overrides, chosen options, run directories,
and the workaround that keeps Lightning's DDP children inside their multirun job.

Everything else in the app gets these facts from here, so a function called in-process without Hydra (a
test, a notebook) sees a plain single run: no multirun, no overrides, no choices.
"""

from __future__ import annotations

import secrets
import sys
from dataclasses import dataclass, field

from omegaconf import OmegaConf, open_dict, read_write

__all__ = [
    "Sweep",
    "child_argv",
    "choices",
    "multirun_job",
    "overrides",
    "prepare_ddp_children",
    "register_resolvers",
    "sweep",
]

# Command-line flags of Hydra that take a value and must reach the DDP children unchanged.
_FLAGS_WITH_VALUE = ("-cn", "--config-name", "-cp", "--config-path", "-cd", "--config-dir")


def register_resolvers() -> None:
    """`${run_id:}`: six random hex digits, drawn once per config (cached like Hydra's `${now:}`), that
    make default run directory names unique when runs start in the same second (conf/hydra/default.yaml).
    Registered when the app is imported, before Hydra composes; DDP children get the parent's directory
    on their command line."""
    OmegaConf.register_new_resolver("run_id", lambda: secrets.token_hex(3), use_cache=True, replace=True)


register_resolvers()


def _config():  # type: ignore[no-untyped-def]
    """Hydra's runtime config, or None outside a Hydra task."""
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get() if HydraConfig.initialized() else None


def _is_multirun(hc: object) -> bool:
    from hydra.types import RunMode

    return hc is not None and hc.mode == RunMode.MULTIRUN  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Sweep:
    """Multirun facts of the running job: whether it is a sweep job, its sweep dir, number and overrides."""

    multirun: bool = False
    sweep_dir: str | None = None
    job_num: int | None = None
    overrides: list[str] = field(default_factory=list)


def overrides() -> list[str]:
    """The task overrides of the running Hydra job, as typed (empty outside Hydra)."""
    hc = _config()
    return [str(o) for o in hc.overrides.task] if hc is not None else []


def sweep() -> Sweep:
    """The multirun facts of the running job (a plain single run outside Hydra)."""
    hc = _config()
    if hc is None:
        return Sweep()
    multirun = _is_multirun(hc)
    num = hc.job.get("num")
    return Sweep(
        multirun=multirun,
        sweep_dir=str(hc.sweep.dir) if multirun else None,
        job_num=int(num) if multirun and num is not None else None,
        overrides=overrides(),
    )


def choices() -> dict[str, str]:
    """The option chosen for each config group (model, loss, data, ...), without Hydra's own groups."""
    hc = _config()
    if hc is None:
        return {}
    return {k: str(v) for k, v in hc.runtime.choices.items() if not k.startswith("hydra") and v is not None}


def multirun_job() -> str | None:
    """'#N (overrides)' of the running multirun job, or None in a single run."""
    hc = _config()
    if not _is_multirun(hc):
        return None
    return f"#{hc.job.get('num', '?')} ({' '.join(overrides())})"


def child_argv(argv: list[str], job_overrides: list[str]) -> list[str]:
    """The command line a DDP child of one multirun job must run: the job's own overrides, no `-m`.

    Lightning's subprocess launcher re-runs `sys.argv` in each rank; in a sweep that would start the whole
    sweep again in every rank. Config-name/dir flags are kept; every other token is replaced by the job's
    overrides (which include the values the sweeper chose for it).
    """
    kept: list[str] = [argv[0]]
    i = 1
    while i < len(argv):
        token = argv[i]
        if token in _FLAGS_WITH_VALUE and i + 1 < len(argv):
            kept += [token, argv[i + 1]]
            i += 2
            continue
        if token.startswith(tuple(f + "=" for f in _FLAGS_WITH_VALUE if f.startswith("--"))):
            kept.append(token)
        i += 1
    return kept + list(job_overrides)


def prepare_ddp_children() -> bool:
    """In a multirun job, make Lightning's DDP children join this job's run directory; True if changed.

    Lightning appends `hydra.run.dir=<HydraConfig run.dir>` and `hydra.output_subdir=null` to the child's
    command, so we point run.dir at this job's output directory and drop the sweep from sys.argv: the
    children neither compose a new sweep nor create their own directories.
    """
    hc = _config()
    if not _is_multirun(hc):
        return False
    sys.argv = child_argv(sys.argv, overrides())
    with read_write(hc), open_dict(hc):
        hc.run.dir = hc.runtime.output_dir
    return True
