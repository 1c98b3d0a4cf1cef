"""A saved W&B workspace for one sweep group: the panels people compare runs by.

    python -m colorization.app.dashboard --entity E --project P --group G [--name NAME]
    python -m colorization.app.dashboard --entity E --project P --group G --print   # the spec, no server

Sections: validation metrics over training steps (PSNR, SSIM, colourfulness, its gap, AuC, loss); the
temperature (colourfulness against PSNR over the runs' best epochs, parallel coordinates from λ and T to
the metrics, the per-epoch T-curve table); the fixed validation images table (gray | truth | prediction,
run by run). The runs are those of the W&B group G (a sweep's group: see colorization.app.tracking). The
keys are those the dashboard callbacks log (colorization.callbacks.dashboards). Building the spec needs no
server; saving it needs W&B credentials. Uses W&B's workspace API (`wandb-workspaces`, the dashboard
extra).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from colorization.callbacks.dashboards import CURVE_KEY, IMAGES_KEY, STEP_METRIC, summary_key
from colorization.errors import ColorizationError

__all__ = ["PARAMETERS", "build_workspace", "main", "workspace_spec"]

#: The swept hyper-parameters (config keys as W&B flattens the run's config).
PARAMETERS = ("loss.lambda", "loss.temperature")
OVER_STEPS = ("psnr", "ssim", "colorfulness", "colorfulness_gap", "auc", "loss")
COMPARED = ("psnr", "ssim", "colorfulness", "colorfulness_gap", "auc")


def _modules() -> tuple[Any, Any]:
    try:
        import wandb_workspaces.reports.v2 as wr
        import wandb_workspaces.workspaces as ws
    except ImportError:
        raise ColorizationError(
            "the W&B workspace needs the dashboard extra: pip install 'colorization-lab[dashboard]'"
        ) from None
    return wr, ws


def build_workspace(entity: str, project: str, group: str, name: str | None = None) -> Any:
    """The workspace (wandb_workspaces.workspaces.Workspace) of one sweep group; nothing is sent."""
    wr, ws = _modules()
    over_steps = [
        wr.LinePlot(title=f"val/{m}", x=STEP_METRIC, y=[f"val/{m}"], legend_template="${runName}")
        for m in OVER_STEPS
    ]
    best = {m: wr.SummaryMetric(summary_key(f"val/{m}")) for m in COMPARED}
    columns = [wr.ParallelCoordinatesPlotColumn(metric=wr.Config(p), display_name=p) for p in PARAMETERS]
    columns += [wr.ParallelCoordinatesPlotColumn(metric=best[m], display_name=m) for m in COMPARED]
    temperature = [
        wr.ScatterPlot(
            title="colourfulness against PSNR (best epoch of each run)",
            x=best["psnr"],
            y=best["colorfulness"],
        ),
        wr.ParallelCoordinatesPlot(title="λ and T → metrics", columns=columns, layout=wr.Layout(w=16, h=8)),
        wr.WeavePanelSummaryTable(table_name=CURVE_KEY, layout=wr.Layout(w=24, h=10)),
    ]
    images = [wr.WeavePanelSummaryTable(table_name=IMAGES_KEY, layout=wr.Layout(w=24, h=18))]
    sections = [
        ws.Section(name="Validation metrics over steps", panels=over_steps, is_open=True),
        ws.Section(name="Temperature T and λ", panels=temperature, is_open=True),
        ws.Section(name="Validation images", panels=images, is_open=True),
    ]
    try:
        return ws.Workspace(
            entity=entity,
            project=project,
            name=name or f"{group}: colorization",
            sections=sections,
            runset_settings=ws.RunsetSettings(filters=[ws.Metric("Group") == group]),
        )
    except ValueError as err:  # pydantic's checks of the names (e.g. no emoji in a workspace name)
        found = err.errors() if hasattr(err, "errors") else [{"msg": str(err)}]
        raise ColorizationError(f"W&B refuses this workspace: {found[0]['msg']}") from None


def workspace_spec(workspace: Any) -> dict[str, Any]:
    """The workspace as the JSON view spec W&B stores (what saving sends)."""
    return workspace._to_model().model_dump(by_alias=True, exclude_none=True, mode="json")


def main(argv: Sequence[str] | None = None) -> int:
    """Build the workspace of a sweep group and save it (or print its spec with --print)."""
    p = argparse.ArgumentParser(
        prog="python -m colorization.app.dashboard", description=__doc__.splitlines()[0]
    )
    p.add_argument("--entity", required=True, help="W&B entity (user or team)")
    p.add_argument(
        "--project", required=True, help="W&B project (logger.wandb.project; default colorization)"
    )
    p.add_argument("--group", required=True, help="the sweep's W&B group (sweep_name, or train-<sweep dir>)")
    p.add_argument("--name", default=None, help="name of the saved workspace (default: GROUP: colorization)")
    p.add_argument(
        "--print", action="store_true", help="print the workspace spec as JSON instead of saving it"
    )
    args = p.parse_args(argv)
    try:
        workspace = build_workspace(args.entity, args.project, args.group, args.name)
        if args.print:
            print(json.dumps(workspace_spec(workspace), indent=1))
            return 0
        from colorization.app.tracking import wandb_credentials_present

        if not wandb_credentials_present():
            raise ColorizationError(
                "saving a workspace needs W&B credentials: run `wandb login` (or use --print)"
            )
        try:
            saved = workspace.save()
        except Exception as err:  # noqa: BLE001 - the server's answer, whatever it is, in one line
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ColorizationError(f"W&B did not save the workspace: {first}") from None
        print(f"workspace saved: {saved.url}")
        return 0
    except ColorizationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
