"""SIGGRAPH17: the release's layout and forward, user hints (colorize --hints, their JSON format), the
simulated hints and Huber loss of training, and the ONNX graph with its hints input."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from releases import save_release, serve, siggraph17_reference
from support import adam, quiet_trainer
from torch.utils.data import DataLoader

from colorization.errors import ColorizationError, ConfigError
from colorization.imaging import rgb_to_lab
from colorization.inference import Colorizer, ModelInfo, OnnxBackend, TorchBackend
from colorization.inference.cli import main as colorize_main
from colorization.inference.hints import Hint, hint_planes, load_hints, parse_hints
from colorization.inference.pretrained import load_pretrained
from colorization.nets import REGISTRY, SIGGRAPHNet
from colorization.objectives import ABInference, RegressionModule
from colorization.objectives.hints import HintSampler

TINY = {"_target_": "colorization.nets.SIGGRAPHNet", "width": 0.0625}


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory):
    """A random SIGGRAPH17 release served over HTTP: (path, state dict, URL)."""
    folder = tmp_path_factory.mktemp("siggraph17")
    path, state = save_release("siggraph17", folder)
    with serve(folder) as (base, _):
        yield path, state, f"{base}/{path.name}"


@pytest.fixture(scope="module")
def model(release, tmp_path_factory: pytest.TempPathFactory):
    """The release downloaded, verified and loaded as colorize does, and its inference info."""
    path, _, url = release
    mp = pytest.MonkeyPatch()
    mp.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch")))
    prefix = path.stem.rsplit("-", 1)[1]
    mp.setitem(REGISTRY, "siggraph17", dataclasses.replace(REGISTRY["siggraph17"], url=url, sha256=prefix))
    try:
        yield load_pretrained("siggraph17")
    finally:
        mp.undo()


def test_release_loads_key_for_key_and_runs_the_released_forward(release, model) -> None:
    """Strict load of the official names; the output is an independent functional forward's, with and
    without hints."""
    _, state, _ = release
    net, info = model
    assert info.hints and info.objective == "regression" and info.temperature is None
    g = torch.Generator().manual_seed(3)
    L_n = torch.rand(2, 1, 32, 24, generator=g) - 0.5
    mask = (torch.rand(2, 1, 32, 24, generator=g) < 0.05).float()
    hints = torch.cat([(torch.rand(2, 2, 32, 24, generator=g) - 0.5) * mask, mask], 1)
    with torch.inference_mode():
        auto, ref_auto = net(L_n), siggraph17_reference(state, L_n)
        hinted, ref_hinted = net(L_n, hints), siggraph17_reference(state, L_n, hints)
    assert ref_auto.abs().max() > 5 and (hinted - auto).abs().max() > 1e-2
    torch.testing.assert_close(auto, ref_auto, atol=1e-4, rtol=0)
    torch.testing.assert_close(hinted, ref_hinted, atol=1e-4, rtol=0)


def test_hints_change_the_output_near_them_and_no_hints_is_automatic(model) -> None:
    net, info = model
    colorizer = Colorizer(TorchBackend(net), info, size=32)
    rgb = np.random.default_rng(4).random((64, 48, 3)).astype(np.float32) * 0.6 + 0.2
    auto = colorizer.colorize_rgb(rgb)
    np.testing.assert_array_equal(colorizer.colorize_rgb(rgb, hints=[]), auto)  # no points: automatic
    hinted = colorizer.colorize_rgb(rgb, hints=[Hint(x=10, y=50, ab=(70.0, 60.0), size=3)])
    change = np.abs(rgb_to_lab(hinted)[..., 1:] - rgb_to_lab(auto)[..., 1:]).sum(-1)
    yy, xx = np.mgrid[0:64, 0:48]
    distance = np.hypot(yy - 50, xx - 10)
    near, far = change[distance <= 4].mean(), change[distance >= 24].mean()
    assert near > 1.0 and near > 3 * far, (near, far)


def test_hints_file_format(tmp_path: Path) -> None:
    """Points in pixels with an RGB (list or hex) or ab colour and an optional size; one-line errors."""
    spec = {"points": [{"x": 7, "y": 9.5, "rgb": [255, 0, 0]}, {"x": 1, "y": 2, "rgb": "#00ff00", "size": 3},
                       {"x": 0, "y": 0, "ab": [-20, 35]}]}  # fmt: skip
    file = tmp_path / "hints.json"
    file.write_text(json.dumps(spec))
    red, green, ab = load_hints(file)
    red_ab = rgb_to_lab(np.array([[[1.0, 0.0, 0.0]]], np.float32))[0, 0, 1:]
    assert red.x == 7 and red.y == 9.5 and red.size == 1 and np.allclose(red.ab, red_ab, atol=1e-3)
    assert green.size == 3 and green.ab[0] < -50 and ab.ab == (-20.0, 35.0)
    planes = hint_planes([red, green, ab], (10, 8), (5, 4))  # a photo 8 wide, 10 high → network 4×5
    assert planes.shape == (3, 5, 4) and planes[2].sum() == 1 + 9  # red's pixel, green's 3×3 square
    np.testing.assert_allclose(planes[:2, 4, 3] * 110, red_ab, atol=1e-3)  # (7, 9.5) → row 4, column 3
    np.testing.assert_allclose(planes[:2, 1, 1] * 110, green.ab, atol=1e-3)
    np.testing.assert_allclose(planes[:2, 0, 0] * 110, ab.ab, atol=1e-4)  # a later point covers an earlier
    for bad, needle in (({"points": [{"x": 1, "y": 1}]}, "exactly one colour"),
                        ({"points": [{"x": 1, "y": 1, "rgb": [300, 0, 0]}]}, "0 to 255"),
                        ({"points": [{"x": 1, "y": 1, "ab": [1, 2], "radius": 2}]}, "unknown keys"),
                        ({"points": [{"x": "a", "y": 1, "ab": [1, 2]}]}, "points[0].x must be a number"),
                        ([1, 2], "expected")):  # fmt: skip
        with pytest.raises(ColorizationError, match=f".*{needle.replace('[', '.').replace(']', '.')}"):
            parse_hints(bad)
    with pytest.raises(ColorizationError, match="outside the 8×10 photo"):
        hint_planes([Hint(8, 0, (0.0, 0.0))], (10, 8), (5, 4))
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ColorizationError, match="not a JSON hints file"):
        load_hints(tmp_path / "broken.json")


def test_colorize_cli_with_hints(release, tmp_path: Path, capsys) -> None:
    path, _, _ = release
    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(5).random((40, 32, 3)) * 255).astype(np.uint8)).save(photo)
    hints = tmp_path / "hints.json"
    hints.write_text(json.dumps({"points": [{"x": 5, "y": 30, "rgb": "#d02020", "size": 3}]}))
    base = [str(photo), "--pretrained", "siggraph17", "--weights", str(path), "--size", "32"]
    assert colorize_main([*base, "-o", str(tmp_path / "auto")]) == 0
    assert colorize_main([*base, "-o", str(tmp_path / "hinted"), "--hints", str(hints)]) == 0
    auto = np.asarray(Image.open(tmp_path / "auto" / "photo.png"), dtype=np.float32)
    hinted = np.asarray(Image.open(tmp_path / "hinted" / "photo.png"), dtype=np.float32)
    assert np.abs(hinted - auto).max() > 5
    capsys.readouterr()
    assert colorize_main([*base, "-o", str(tmp_path / "t"), "--temperature", "0.5"]) == 1
    assert "classification models only" in capsys.readouterr().err
    # a network without hint inputs refuses hints in one line
    plain = Colorizer.from_module(ABInference(torch.nn.Conv2d(1, 2, 1)), size=32)
    with pytest.raises(ColorizationError, match="takes user hints"):
        plain.colorize_rgb(np.zeros((32, 32, 3), np.float32), hints=[Hint(1, 1, (0.0, 0.0))])


def test_onnx_graph_takes_hints(tmp_path: Path) -> None:
    """A hint-taking model exports with a second input `hints`; ONNX Runtime matches torch with hints, and
    feeds zeros (automatic) without them."""
    pytest.importorskip("onnxruntime")
    from colorization.inference.export import export_model

    torch.manual_seed(0)
    model = ABInference(SIGGRAPHNet(width=0.0625)).eval()
    info = ModelInfo(objective="regression", image_size=32, size_multiple=8, hints=True)
    backend = OnnxBackend(export_model(model, tmp_path / "sig.onnx", info))
    assert backend.info.hints and backend.hints_name == "hints"
    L_n = (np.random.default_rng(6).random((1, 1, 40, 32)) - 0.5).astype(np.float32)
    planes = hint_planes([Hint(4, 30, (60.0, 40.0), 3)], (40, 32), (40, 32))[None]
    torch_backend = TorchBackend(model)
    np.testing.assert_allclose(backend(L_n, planes), torch_backend(L_n, planes), atol=1e-4)
    np.testing.assert_allclose(backend(L_n), torch_backend(L_n), atol=1e-4)
    assert np.abs(backend(L_n, planes) - backend(L_n)).max() > 1e-3


def test_simulated_hints_follow_the_paper(monkeypatch) -> None:
    """Geometric counts (P(none) = p, mean (1-p)/p), square patches of sides within the range, each carrying
    its patch's mean ab, on the batch's device."""
    torch.manual_seed(0)
    counts = HintSampler(p=0.125).counts(20000, torch.device("cpu")).float()
    assert abs(float((counts == 0).float().mean()) - 0.125) < 0.01 and abs(float(counts.mean()) - 7.0) < 0.25
    sampler = HintSampler(p=0.5, max_hints=1, min_patch=2, max_patch=5)
    ab = torch.rand(64, 2, 24, 20) * 2 - 1
    planes = sampler(ab)
    assert planes.shape == (64, 3, 24, 20) and set(planes[:, 2].unique().tolist()) <= {0.0, 1.0}
    hinted = 0
    for b in range(64):
        mask = planes[b, 2].bool()
        if not mask.any():
            continue
        hinted += 1
        rows, cols = mask.any(1).nonzero().squeeze(1), mask.any(0).nonzero().squeeze(1)
        side = len(rows)
        assert side == len(cols) and 2 <= side <= 5 and int(mask.sum()) == side * side  # one square
        patch = ab[b, :, rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
        expected = patch.mean((1, 2))
        torch.testing.assert_close(planes[b, :2][:, mask], expected[:, None].expand(2, side * side))
        assert (planes[b, :2][:, ~mask] == 0).all()
    assert 16 < hinted < 48  # p = 1/2: about half the images have their one hint
    with pytest.raises(ConfigError, match="model.hints.p=0 is out of range"):
        HintSampler.from_config({"p": 0})
    with pytest.raises(ConfigError, match="model.hints.radius"):
        HintSampler.from_config({"radius": 2})


def test_huber_loss_is_the_papers() -> None:
    """Quadratic within delta (1/110: one Lab unit), linear beyond: against the formula."""
    module = RegressionModule(TINY, adam(), loss="huber", perceptual_metrics=False)
    pred = torch.tensor([0.0, 0.004, -0.05, 0.5]).view(1, 1, 2, 2).expand(1, 2, 2, 2)
    truth = torch.zeros(1, 2, 2, 2)
    d = 1 / 110
    err = pred.abs()
    ref = torch.where(err < d, 0.5 * err**2, d * (err - 0.5 * d)).mean()
    assert torch.isclose(module.compute_loss(pred, {"ab": truth}), ref)
    with pytest.raises(ConfigError, match="loss.delta"):
        RegressionModule(TINY, adam(), loss="huber", huber_delta=0.0)


def test_training_gets_simulated_hints_and_validation_none(batches) -> None:
    """model.hints: the net sees hint planes in training steps only (validation is automatic)."""
    torch.manual_seed(0)
    module = RegressionModule(TINY, adam(3e-3), loss="huber", hints={"p": 0.2}, perceptual_metrics=False)
    seen: list[str] = []
    forward = module.net.forward

    def spy(L, hints=None):
        seen.append(("train" if module.training else "eval") + ("+hints" if hints is not None else ""))
        return forward(L, hints)

    module.net.forward = spy
    quiet_trainer(max_steps=4, limit_val_batches=1, val_check_interval=4, callbacks=[]).fit(
        module,
        train_dataloaders=DataLoader(batches[:1] * 4, batch_size=None),
        val_dataloaders=DataLoader(batches[:1], batch_size=None),
    )
    assert seen.count("train+hints") == 4 and "eval" in seen and "eval+hints" not in seen
    assert math.isfinite(float(module.trainer.callback_metrics["train/loss"]))
    with pytest.raises(ConfigError, match="ZhangNet takes no user hints"):
        RegressionModule(
            {"_target_": "colorization.nets.ZhangNet", "width": 0.0625}, adam(), hints={"p": 0.5}
        )


def test_siggraph17_config_trains_the_papers_objective(train_config) -> None:
    from colorization.app.training import build_module

    cfg = train_config(["model=siggraph17", "model.width=0.0625"])
    module = build_module(cfg)
    assert cfg.loss.name == "huber" and isinstance(module, RegressionModule) and module.loss_name == "huber"
    assert (
        isinstance(module.net, SIGGRAPHNet)
        and module.hint_sampler.p == 0.125
        and module.hint_sampler.max_patch == 9
    )
    assert abs(module.huber_delta - 1 / 110) < 1e-9
    assert build_module(train_config(["model=siggraph17", "model.hints=null"])).hint_sampler is None
    assert not any(p.requires_grad for p in module.net.model_class.parameters())  # the unused 529-class head
    with pytest.raises(ConfigError, match="model.freeze=11 is out of range; allowed values: 0 to 10"):
        build_module(train_config(["model=siggraph17", "model.width=0.0625", "model.freeze=11"]))
