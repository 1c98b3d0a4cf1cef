"""Fine-tuning (model.init, model.freeze) from this project's checkpoints on the synthetic scenes: a head
start over random weights, frozen blocks that stay fixed, checkpoints by path or URL, restores that win."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from releases import closed_port_url, serve
from support import FAST, ZHANG, adam, lab_batches, quiet_trainer, run_cli
from torch.utils.data import DataLoader

from colorization.errors import ColorizationError, ConfigError
from colorization.objectives import ClassificationModule, RegressionModule, load_checkpoint


def classifier(**kw) -> ClassificationModule:
    return ClassificationModule(ZHANG, adam(3e-3), prior="uniform", perceptual_metrics=False, **kw)


def loader(batches: list[dict]) -> DataLoader:
    return DataLoader(batches, batch_size=None)


@pytest.fixture(scope="module")
def scenes() -> tuple[list[dict], list[dict]]:
    """Training and validation batches of different synthetic scenes."""
    return lab_batches(16, 32, 4, seed=0), lab_batches(8, 32, 4, seed=100)


@pytest.fixture(scope="module")
def trained(scenes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of Zhang's net (width 1/16) trained for 40 steps on the synthetic scenes."""
    torch.manual_seed(0)
    module = classifier()
    trainer = quiet_trainer(max_steps=40, limit_val_batches=0)
    trainer.fit(module, train_dataloaders=loader(scenes[0] * 10))
    path = tmp_path_factory.mktemp("ckpt") / "trained.ckpt"
    trainer.save_checkpoint(path)
    return path


def val_loss(module: ClassificationModule, batches: list[dict]) -> float:
    return float(quiet_trainer().validate(module, dataloaders=loader(batches), verbose=False)[0]["val/loss"])


def net_state(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu", weights_only=False)["state_dict"]
    return {k[4:]: v for k, v in state.items() if k.startswith("net.")}


def test_a_checkpoint_gives_a_head_start_over_random_weights(trained, scenes) -> None:
    """Started from a checkpoint trained on the scenes, validation begins lower than from scratch."""
    torch.manual_seed(1)
    scratch = val_loss(classifier(), scenes[1])
    torch.manual_seed(1)
    started = classifier(init=str(trained))
    loss = val_loss(started, scenes[1])
    assert loss < 0.8 * scratch, (loss, scratch)
    got = started.net.state_dict()
    assert all(torch.equal(got[k], v) for k, v in net_state(trained).items())


def test_frozen_blocks_do_not_change(trained, scenes) -> None:
    """model.freeze=3: blocks 1-3 (weights, batch-norm statistics) stay the checkpoint's; the rest learns."""
    module = classifier(init=str(trained), freeze=3)
    quiet_trainer(max_steps=6, limit_val_batches=0).fit(module, train_dataloaders=loader(scenes[0]))
    start, now = net_state(trained), module.net.state_dict()
    frozen = [k for k in now if k.split(".")[:2] in (["blocks", "0"], ["blocks", "1"], ["blocks", "2"])]
    assert frozen and all(torch.equal(now[k], start[k]) for k in frozen)  # incl. running_mean / running_var
    assert not torch.equal(now["blocks.3.0.weight"], start["blocks.3.0.weight"])
    assert not torch.equal(now["head.weight"], start["head.weight"])


def test_init_from_a_url_is_downloaded_once_into_the_cache(trained, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    folder = tmp_path / "served"
    folder.mkdir()
    shutil.copy(trained, folder / "trained.ckpt")
    with serve(folder) as (base, requests):
        for _ in range(2):
            module = classifier(init=f"{base}/trained.ckpt")
            module.load_init_weights()
        assert requests == ["/trained.ckpt"]  # the second module found it in the cache
    got = module.net.state_dict()
    assert all(torch.equal(got[k], v) for k, v in net_state(trained).items())
    assert list((tmp_path / "torch" / "hub" / "checkpoints").glob("init-*/trained.ckpt"))


def test_a_restored_checkpoint_is_never_reinitialised(trained, scenes, tmp_path) -> None:
    """The init file is read at the first fit only: a module loaded from its own checkpoint, or resumed,
    keeps the checkpoint's weights even when the init file is gone."""
    init = tmp_path / "init.ckpt"
    shutil.copy(trained, init)
    module = classifier(init=str(init))
    trainer = quiet_trainer(max_steps=3, limit_val_batches=0)
    trainer.fit(module, train_dataloaders=loader(scenes[0]))
    tuned = tmp_path / "tuned.ckpt"
    trainer.save_checkpoint(tuned)
    init.unlink()
    loaded = load_checkpoint(tuned, perceptual_metrics=False)
    quiet_trainer().validate(loaded, dataloaders=loader(scenes[1]), verbose=False)
    assert all(torch.equal(loaded.net.state_dict()[k], v) for k, v in net_state(tuned).items())
    resumed = classifier(init=str(init))
    quiet_trainer(max_steps=4, limit_val_batches=0).fit(
        resumed, train_dataloaders=loader(scenes[0]), ckpt_path=tuned
    )


def test_an_init_that_does_not_fit_stops_with_one_line(trained, tmp_path) -> None:
    """Another head (regression weights into classification), another gamut, a missing file, a bad form."""
    regression = RegressionModule(ZHANG, adam(), perceptual_metrics=False)
    torch.save(regression.net.state_dict(), tmp_path / "regression.pth")
    module = classifier(init=str(tmp_path / "regression.pth"))
    with pytest.raises(
        ColorizationError, match=r"do not fit ZhangNet: .*head\.weight is \[2, 16, 1, 1\]"
    ) as err:
        module.load_init_weights()
    assert "\n" not in str(err.value)
    other = ClassificationModule(ZHANG, adam(), gamut="dataset", prior="uniform", init=str(trained))
    other._set_gamut(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    with pytest.raises(ColorizationError, match="other ab bins"):
        other.load_init_weights()
    with pytest.raises(ConfigError, match="no such file"):
        classifier(init=str(tmp_path / "missing.ckpt")).load_init_weights()
    with pytest.raises(ConfigError, match="model.init='weights.txt' is not allowed"):
        classifier(init="weights.txt")
    with pytest.raises(ConfigError, match="model.freeze=1 is out of range; allowed values: 0"):
        RegressionModule({"_target_": "colorization.nets.BaselineCNN"}, adam(), freeze=1)


def test_train_config_passes_init_and_freeze(train_config, trained) -> None:
    from colorization.app.training import build_module

    module = build_module(train_config([f"model.init={trained}", "model.freeze=2"]))
    assert module.init_source.value == str(trained) and module.freeze == 2
    assert not any(p.requires_grad for p in module.net.blocks[:2].parameters())


@pytest.mark.slow
def test_train_py_without_network_stops_with_one_line(tmp_path: Path, shared_data_dir: Path) -> None:
    """`python train.py model.init=URL` offline: the download's one line (URL, and how to use a copy)."""
    url = closed_port_url("ours.ckpt")
    args = [*FAST, f"model.init={url}", f"hydra.run.dir={tmp_path / 'run'}"]
    proc = run_cli("train.py", args, tmp_path, shared_data_dir, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1 and len(lines) == 1 and url in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
