"""The saved W&B workspace of a sweep group: its spec is built without a server and holds the panels
people compare runs by, reading the keys and summaries the dashboard callbacks log."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from colorization.callbacks import WandbSummaries
from colorization.callbacks.dashboards import CURVE_KEY, IMAGES_KEY

pytest.importorskip("wandb_workspaces", reason="the dashboard extra (wandb-workspaces) is not installed")

from colorization.app.dashboard import build_workspace, main, workspace_spec  # noqa: E402


def panels(spec: dict) -> dict[str, list[dict]]:
    sections = spec["spec"]["section"]["panelBankConfig"]["sections"]
    return {s["name"]: s["panels"] for s in sections}


def test_the_workspace_of_a_sweep_group_has_the_panels() -> None:
    spec = workspace_spec(build_workspace("team", "colorization", "lambda-T"))
    assert spec["entity"] == "team" and spec["project"] == "colorization"
    (runset,) = spec["spec"]["section"]["runSets"]
    assert [(f["key"], f["op"], f["value"]) for f in runset["filters"]["filters"]] == [
        ({"section": "run", "name": "group"}, "=", "lambda-T")
    ]
    sections = panels(spec)
    assert list(sections) == ["Validation metrics over steps", "Temperature T and λ", "Validation images"]
    lines = sections["Validation metrics over steps"]
    assert {p["viewType"] for p in lines} == {"Run History Line Plot"}
    assert [p["config"]["metrics"] for p in lines] == [
        [f"val/{m}"] for m in ("psnr", "ssim", "colorfulness", "colorfulness_gap", "auc", "loss")
    ]
    assert {p["config"]["xAxis"] for p in lines} == {"trainer/global_step"}
    scatter, parallel, curve = sections["Temperature T and λ"]
    assert scatter["viewType"] == "Scatter Plot"
    assert (scatter["config"]["xAxis"], scatter["config"]["yAxis"]) == (
        "summary:val/psnr.max",
        "summary:val/colorfulness",
    )
    assert parallel["viewType"] == "Parallel Coordinates Plot"
    accessors = [c["accessor"] for c in parallel["config"]["columns"]]
    assert accessors[:2] == ["config:loss.value.lambda", "config:loss.value.temperature"]
    assert set(accessors[2:]) == {
        "summary:val/psnr.max",
        "summary:val/ssim.max",
        "summary:val/colorfulness",
        "summary:val/colorfulness_gap.min",
        "summary:val/auc.max",
    }
    (images,) = sections["Validation images"]
    assert curve["viewType"] == images["viewType"] == "Weave"
    assert CURVE_KEY in json.dumps(curve) and IMAGES_KEY in json.dumps(images)
    # every summary the panels read is the one the run writes (WandbSummaries: val/psnr → {"max": ...})
    defined = WandbSummaries().definitions(SimpleNamespace(eval_temperatures=[]))
    for accessor in [scatter["config"]["xAxis"], scatter["config"]["yAxis"], *accessors[2:]]:
        metric, _, aggregate = accessor.removeprefix("summary:").partition(".")
        assert defined[metric] == (aggregate or "last"), accessor


def test_the_command_prints_the_spec_and_saving_needs_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--entity", "team", "--project", "colorization", "--group", "lambda-T"]
    assert main([*args, "--print", "--name", "lambda x T"]) == 0
    spec = json.loads(capsys.readouterr().out)
    assert spec["displayName"] == "lambda x T" and len(panels(spec)) == 3
    assert main([*args, "--print", "--name", "λ × T 🎨"]) == 1
    assert (
        capsys.readouterr().err.strip()
        == "error: W&B refuses this workspace: Value error, Emojis are not allowed :("
    )
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    assert main(args) == 1
    assert capsys.readouterr().err.strip() == (
        "error: saving a workspace needs W&B credentials: run `wandb login` (or use --print)"
    )
