"""Issue 10 in-process: last.ckpt is the latest state, a signal stops a fit with last.ckpt at its step and
the resumed run ends where an uninterrupted one ends, `ckpt_path=last` / a run directory, one run per run
directory, a changed learning rate on resume, `+key` typos, evaluate.py with a bad checkpoint among good.

The same situations through `python train.py` subprocesses and signals sent from outside are in
test_app_signals.py (slow).
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf, open_dict
from staging import callback_overrides
from support import FAST, compose_config

from colorization.app import resume
from colorization.app.evaluation import checkpoint_paths, run_evaluation
from colorization.app.keys import check_added_keys
from colorization.app.runtime import register_resolvers
from colorization.app.training import check, run_training
from colorization.errors import ColorizationError, ConfigError

COMMON = ["model=cnn", *FAST]


@pytest.fixture(scope="module")
def data_dir(shared_data_dir: Path) -> Path:
    return shared_data_dir


def state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


def adam_steps(ckpt: dict) -> set[int]:
    """The optimiser's own step count of every parameter (Adam keeps one per parameter)."""
    return {int(s["step"]) for s in ckpt["optimizer_states"][0]["state"].values()}


# ---------------------------------------------------------------------------------------------- finding 1
def test_last_ckpt_is_the_latest_step_when_the_metric_peaked_early(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """11 steps, a validation every 2, the monitored metric best at step 4: Lightning's save_last left
    last.ckpt at the best step; LastCheckpoint writes it at every validation, every 5 steps and at the end,
    and the best-k checkpoint stays the best one."""
    peak = [
        "trainer.max_epochs=-1",
        "trainer.max_steps=11",
        "optimized_metric=val/peaked",
        *callback_overrides("peak", "PeakAt", step=4),
    ]
    old = compose_config(
        [*COMMON, *peak, "callbacks.last_checkpoint=null", "callbacks.model_checkpoint.save_last=true"],
        tmp_path / "old",
        data_dir,
    )
    run_training(old)
    assert state(tmp_path / "old" / "checkpoints" / "last.ckpt")["global_step"] == 4  # the finding
    capsys.readouterr()

    new = [*peak, "callbacks.last_checkpoint.every_n_train_steps=5", "callbacks.last_checkpoint.verbose=true"]
    run_training(compose_config([*COMMON, *new], tmp_path / "new", data_dir))
    folder = tmp_path / "new" / "checkpoints"
    assert state(folder / "last.ckpt")["global_step"] == 11
    (best,) = folder.glob("best-*.ckpt")
    assert state(best)["global_step"] == 4
    writes = re.findall(r"^last\.ckpt: global step (\d+) \((.+?)\)", capsys.readouterr().out, re.MULTILINE)
    assert [int(step) for step, _ in writes] == [2, 4, 5, 6, 8, 10, 10, 11]
    assert {int(step): why for step, why in writes if int(step) in (5, 11)} == {
        5: "every 5 steps",
        11: "end of fitting",
    }
    assert [why for step, why in writes if step == "10"] == ["every 5 steps", "validation"]


# ---------------------------------------------------------------------------------------------- finding 2
@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict:
    """The reference: 4 epochs of 2 steps without interruption."""
    out = tmp_path_factory.mktemp("uninterrupted")
    run_training(compose_config([*COMMON, "trainer.max_epochs=4"], out, data_dir))
    return state(out / "checkpoints" / "last.ckpt")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_saves_last_at_its_step_and_resume_ends_like_an_uninterrupted_run(
    signum: signal.Signals,
    tmp_path: Path,
    data_dir: Path,
    uninterrupted: dict,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A real signal to this process after step 5 (mid-epoch): exit 128 + signum, last.ckpt at step 5, one
    line saying how to resume; `ckpt_path=last` in the same directory (with a changed learning rate, said
    to be ignored) ends at the reference's global step, epoch and optimiser step count."""
    stop = callback_overrides("stop", "SignalAt", step=5, signum=int(signum))
    cfg = compose_config([*COMMON, "trainer.max_epochs=4", *stop], tmp_path, data_dir)
    with pytest.raises(SystemExit) as stopped:
        run_training(cfg)
    assert stopped.value.code == 128 + signum
    saved = state(tmp_path / "checkpoints" / "last.ckpt")
    assert saved["global_step"] == 5 and adam_steps(saved) == {5}
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("stopped by")]
    assert len(lines) == 1
    assert lines[0].startswith(f"stopped by {signum.name} at global step 5; last.ckpt saved at this step")
    assert f"hydra.run.dir={tmp_path} ckpt_path=last" in lines[0]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back after the fit

    if signum == signal.SIGINT:
        return  # the resume is the same for both signals
    cfg = compose_config(
        [*COMMON, "trainer.max_epochs=4", "ckpt_path=last", "optimizer.lr=0.5"], tmp_path, data_dir
    )
    run_training(cfg)
    assert "optimizer.lr 0.0001 → 0.5" in caplog.text and "do not apply" in caplog.text
    resumed = state(tmp_path / "checkpoints" / "last.ckpt")
    assert resumed["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(1e-4)  # as said
    for key in ("global_step", "epoch"):
        assert resumed[key] == uninterrupted[key], key
    assert adam_steps(resumed) == adam_steps(uninterrupted) == {uninterrupted["global_step"]}


# ---------------------------------------------------------------------------------------------- ckpt_path
def _fake_checkpoint(path: Path, step: int = 3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"global_step": step, "state_dict": {"w": torch.ones(1000)}}, path)
    return path


def test_ckpt_path_last_and_run_directories(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`last`: this run's last.ckpt, or a fresh start (said) while there is none; a run directory or its
    checkpoints folder: its last.ckpt; Lightning's other keywords pass through."""
    folder = tmp_path / "run" / "checkpoints"
    assert resume.resolve_ckpt_path("last", folder) is None
    assert "no last.ckpt" in capsys.readouterr().out
    last = _fake_checkpoint(folder / "last.ckpt")
    assert resume.resolve_ckpt_path("last", folder) == str(last)
    assert resume.resolve_ckpt_path(tmp_path / "run", tmp_path / "other") == str(last)
    assert resume.resolve_ckpt_path(folder, tmp_path / "other") == str(last)
    assert resume.resolve_ckpt_path("hpc", folder) == "hpc"
    with pytest.raises(ConfigError, match="no last.ckpt in"):
        resume.resolve_ckpt_path(tmp_path, tmp_path)


def test_slurm_jobs_resume_from_their_own_last_checkpoint(tmp_path: Path) -> None:
    """hardware=slurm sets ckpt_path=last, so a job submitit requeues (same job directory) resumes from its
    last.ckpt, and a first start (none yet) trains from scratch; the command line still wins."""
    if importlib.util.find_spec("hydra_plugins.hydra_submitit_launcher") is None:
        pytest.skip("hardware=slurm needs the cluster extra (hydra-submitit-launcher)")
    assert compose_config(["hardware=slurm"], tmp_path, tmp_path).ckpt_path == "last"
    assert compose_config(["hardware=slurm", "ckpt_path=null"], tmp_path, tmp_path).ckpt_path is None


@pytest.mark.parametrize("damage", ["truncated", "empty"])
def test_damaged_ckpt_path_is_one_line(damage: str, tmp_path: Path, data_dir: Path) -> None:
    """A truncated or zero-byte checkpoint stops the config check with one line naming the file."""
    good = _fake_checkpoint(tmp_path / "good.ckpt").read_bytes()
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(good[: len(good) // 2] if damage == "truncated" else b"")
    cfg = compose_config([*COMMON, f"ckpt_path={bad}"], tmp_path, data_dir)
    with pytest.raises(ColorizationError) as err:
        check(cfg)
    assert str(err.value).startswith(f"cannot read checkpoint {bad}:") and "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------- finding 6
def test_run_directory_holds_one_run(tmp_path: Path) -> None:
    """A directory with another run's files is refused unless the run resumes from a checkpoint in it; a
    directory locked by a running process is refused too (a second open file holds its own flock)."""
    run = tmp_path / "run"
    with resume.claim_run_dir(run, None):  # a new directory
        with pytest.raises(ConfigError, match=f"in use by another run .process {os.getpid()}"):
            with resume.claim_run_dir(run, None):
                pass
    (run / "config.yaml").write_text("seed: 0\n")
    last = _fake_checkpoint(run / "checkpoints" / "last.ckpt")
    with pytest.raises(ConfigError, match="already holds a run .config.yaml, checkpoints/last.ckpt."):
        with resume.claim_run_dir(run, None):
            pass
    with pytest.raises(ConfigError, match="ckpt_path=last"):
        with resume.claim_run_dir(run, str(_fake_checkpoint(tmp_path / "elsewhere.ckpt"))):
            pass
    with resume.claim_run_dir(run, str(last)):
        pass
    (run / "checkpoints" / "last.ckpt").unlink()  # an earlier attempt that died before its first checkpoint
    with resume.claim_run_dir(run, None, continues=True):  # `ckpt_path=last` continues it
        pass


def test_run_id_makes_default_run_directories_unique() -> None:
    """`${run_id:}` is drawn once per config (run.dir and sweep.dir agree) and differs between runs; both
    default directory names carry it."""
    register_resolvers()
    first = OmegaConf.create({"run": "r_${run_id:}", "sweep": "s_${run_id:}"})
    second = OmegaConf.create({"run": "r_${run_id:}"})
    assert first.run[2:] == first.sweep[2:] != second.run[2:]
    assert len(first.run) == 8
    hydra_conf = OmegaConf.load(Path(__file__).parents[1] / "conf" / "hydra" / "default.yaml")
    assert OmegaConf.to_container(hydra_conf)["run"]["dir"].endswith("_${run_id:}")
    assert OmegaConf.to_container(hydra_conf)["sweep"]["dir"].endswith("_${run_id:}")


# ---------------------------------------------------------------------------------------------- finding 8
def test_changed_optimisation_lists_each_difference() -> None:
    """Each optimiser or scheduler value that differs, flattened; other hyperparameters are not listed."""
    saved = {"optimizer": {"_target_": "torch.optim.Adam", "lr": 1e-3}, "scheduler": None, "k": 5}
    now = {"optimizer": {"_target_": "torch.optim.Adam", "lr": 1e-4}, "scheduler": {"T_max": 3}, "k": 7}
    assert resume.changed_optimisation(saved, now) == [
        "optimizer.lr 0.001 → 0.0001",
        "scheduler.T_max None → 3",
    ]
    assert resume.changed_optimisation(saved, dict(saved)) == []


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("+loss.lamda=0.3", "loss.lamda is not a key loss=rebalanced_ce takes; did you mean loss.lambda?"),
        (
            "+model.net.widht=2",
            "not a key colorization.nets.BaselineCNN takes; did you mean model.net.width?",
        ),
        ("+trainer.gradient_clipval=1", "did you mean trainer.gradient_clip_val?"),
        ("+optimizer.amsgrd=true", "did you mean optimizer.amsgrad?"),
        ("+trainer.gradient_clip_val=1", None),
        ("+optimizer.amsgrad=true", None),
        ("+callbacks.pace._target_=staging.Pace", None),
    ],
)
def test_added_keys_must_be_taken(override: str, message: str | None, tmp_path: Path) -> None:
    """`+key=value` inside a group: an argument of the nearest `_target_`, or interpolated; else one line
    with a "did you mean"."""
    loss = ["loss=rebalanced_ce"] if "lamda" in override else []
    cfg = compose_config([*COMMON, *loss, override], tmp_path, tmp_path)
    if message is None:
        check_added_keys(cfg, [override])
        return
    with pytest.raises(ConfigError) as err:
        check_added_keys(cfg, [override])
    assert str(err.value).startswith(f"{override}: ") and message in str(err.value)


def test_evaluate_checks_every_checkpoint_first_and_keeps_the_good_results(
    tmp_path: Path, data_dir: Path
) -> None:
    """All bad checkpoints are named in one line before any work; a checkpoint whose evaluation fails (its
    run's data is not on this machine) is skipped with one line, and the report holds the other."""
    good_run = tmp_path / "good"
    run_training(compose_config([*COMMON, "trainer.max_epochs=1"], good_run, data_dir))
    good = good_run / "checkpoints" / "last.ckpt"
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes(good.read_bytes()[:100])
    evaluate = ["max_batches=1"]
    cfg = compose_config(
        [*evaluate, f"ckpt=[{good},{damaged},{tmp_path / 'none.ckpt'}]"], tmp_path, data_dir, "evaluate"
    )
    with pytest.raises(ConfigError) as err:
        checkpoint_paths(cfg)
    text = str(err.value)
    assert f"cannot read checkpoint {damaged}" in text and "none.ckpt: no such checkpoint file" in text
    assert "(2 of 3 checkpoints)" in text and str(good) not in text

    lost_run = tmp_path / "lost"  # the same weights, trained on a folder that is not here
    (lost_run / "checkpoints").mkdir(parents=True)
    (lost_run / "checkpoints" / "last.ckpt").write_bytes(good.read_bytes())
    lost_cfg = compose_config(["data=folder", f"data.root={tmp_path / 'gone'}"], lost_run, data_dir)
    OmegaConf.save(lost_cfg, lost_run / "config.yaml")
    out = tmp_path / "report"
    cfg = compose_config(
        [*evaluate, f"ckpt=[{good},{lost_run / 'checkpoints' / 'last.ckpt'}]"], out, data_dir, "evaluate"
    )
    with open_dict(cfg):
        cfg.data = None
    with pytest.raises(
        ColorizationError, match="1 of 2 checkpoints failed: .*lost.*the report in .* holds the other 1"
    ):
        run_evaluation(cfg)
    report = OmegaConf.load(out / "metrics.json")
    assert [c["name"] for c in report["checkpoints"]] == ["good/last"]
