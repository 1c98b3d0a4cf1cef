"""Published weights (the ECCV16 release) end to end, against a random state dict in the official layout
served on 127.0.0.1: download, hash check, cache, strict load, the release's decoding, offline and misfit
errors, colorize --pretrained, fine-tuning from it and ONNX export."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from releases import closed_port_url, eccv16_reference, layout, save_release, serve
from support import adam

from colorization.errors import ColorizationError, DataUnavailableError
from colorization.inference import Colorizer
from colorization.inference.cli import main as colorize_main
from colorization.inference.pretrained import load_pretrained
from colorization.nets import REGISTRY, SIGGRAPHNet, ZhangNet
from colorization.nets.registry import load_published, load_state, weights_dir
from colorization.nets.zhang_release import eccv16_to_zhangnet, zhangnet_to_eccv16
from colorization.objectives import ClassificationModule


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory):
    """A random ECCV16 release file served over HTTP: (path, state dict, URL, requested paths)."""
    folder = tmp_path_factory.mktemp("eccv16")
    path, state = save_release("eccv16", folder)
    with serve(folder) as (base, requests):
        yield path, state, f"{base}/{path.name}", requests


@pytest.fixture
def cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty weights cache of this test (TORCH_HOME), returned as the checkpoint folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return weights_dir()


def point_registry(monkeypatch: pytest.MonkeyPatch, url: str, sha256: str) -> None:
    """Let the registry's eccv16 entry name this URL and hash prefix (the real ones need the internet)."""
    monkeypatch.setitem(REGISTRY, "eccv16", dataclasses.replace(REGISTRY["eccv16"], url=url, sha256=sha256))


def prefix_of(path: Path) -> str:
    return path.stem.rsplit("-", 1)[1]


def test_registry_holds_the_published_facts() -> None:
    """URLs, hash prefixes (the 8 hex digits in the name), networks and their layouts, parameter counts."""
    eccv, sig = REGISTRY["eccv16"], REGISTRY["siggraph17"]
    assert eccv.url == "https://colorizers.s3.us-east-2.amazonaws.com/colorization_release_v2-9b330a0b.pth"
    assert sig.url == "https://colorizers.s3.us-east-2.amazonaws.com/siggraph17-df00044c.pth"
    for entry in (eccv, sig):
        assert entry.file_name.endswith(f"-{entry.sha256}.pth") and len(entry.sha256) == 8
    assert eccv.temperature == 1.0 and eccv.gamut == "zhang" and eccv.objective == "classification"
    assert sig.takes_hints and not eccv.takes_hints and sig.objective == "regression"
    with torch.device("meta"):
        zhang, siggraph = ZhangNet(width=1, out_channels=313), SIGGRAPHNet()
    official = layout("eccv16")
    params = [k for k in official if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert sum(math.prod(official[k]) for k in params) == 32_236_011  # with the decoding matrix
    assert sum(p.numel() for p in zhang.parameters()) == 32_235_385  # without the decoding matrix
    zeros = {k: torch.zeros(s) for k, s in official.items() if k != "model_out.weight"}
    mapped = eccv16_to_zhangnet({**zeros, "model_out.weight": zhangnet_to_eccv16({})["model_out.weight"]})
    assert {k: list(v.shape) for k, v in mapped.items()} == {
        k: list(v.shape) for k, v in zhang.state_dict().items()
    }
    assert {k: list(v.shape) for k, v in siggraph.state_dict().items()} == layout("siggraph17")
    assert list(siggraph.state_dict()) == list(layout("siggraph17"))  # the official names, in file order


def test_download_verify_cache_load_and_the_release_decoding(release, cache, monkeypatch) -> None:
    """Downloaded once into torch hub's cache, hash-checked, loaded strictly; at T = 1 the project's decoding
    equals softmax → decoding matrix → bilinear ×4 → ×110 of an independent forward; then the cache
    serves a second call with no network at all."""
    path, state, url, requests = release
    point_registry(monkeypatch, url, prefix_of(path))
    before = len(requests)
    model, info = load_pretrained("eccv16")
    assert len(requests) == before + 1
    cached = cache / path.name
    assert cached.is_file() and hashlib.sha256(cached.read_bytes()).hexdigest().startswith(prefix_of(path))
    assert info.objective == "classification" and info.temperature == 1.0 and info.size_multiple == 8
    L_n = torch.rand(2, 1, 32, 40, generator=torch.Generator().manual_seed(1)) - 0.5
    with torch.inference_mode():
        ours, ref = model(L_n), eccv16_reference(state, L_n)
    assert ours.shape == (2, 2, 32, 40) and ref.abs().max() > 5  # a real colour signal, not zeros
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=0)

    point_registry(monkeypatch, closed_port_url(path.name), prefix_of(path))  # no network from here on
    colorizer = Colorizer.from_pretrained("eccv16", size=32)
    assert len(requests) == before + 1
    photo = (np.random.default_rng(0).random((48, 64, 3)) * 255).astype(np.uint8)
    out = colorizer.colorize(photo)
    assert out.shape == photo.shape and out.dtype == np.uint8


def test_bad_hash_is_rejected_with_nothing_cached(release, cache, monkeypatch) -> None:
    path, _, url, _ = release
    point_registry(monkeypatch, url, "deadbeef")
    with pytest.raises(DataUnavailableError) as err:
        load_pretrained("eccv16")
    message = str(err.value)
    assert "\n" not in message and "rejected" in message and "deadbeef" in message
    assert not cache.exists() or not any(cache.iterdir())  # neither the file nor a .part stays


def test_offline_is_one_line_with_the_url_and_how_to_use_a_copy(
    release, cache, monkeypatch, tmp_path, capsys
):
    path, _, _, _ = release
    url = closed_port_url(path.name)
    point_registry(monkeypatch, url, prefix_of(path))
    with pytest.raises(DataUnavailableError) as err:
        load_pretrained("eccv16")
    message = str(err.value)
    assert "\n" not in message and url in message
    assert "--weights PATH" in message and "model.init=PATH" in message and str(cache / path.name) in message
    photo = tmp_path / "photo.png"
    Image.fromarray((np.random.default_rng(1).random((40, 56, 3)) * 255).astype(np.uint8)).save(photo)
    assert (
        colorize_main([str(photo), "-o", str(tmp_path / "out"), "--pretrained", "eccv16", "--size", "32"])
        == 1
    )
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: eccv16 weights unavailable") and url in lines[0]
    # a copy fetched elsewhere: --weights PATH, no network
    argv = [str(photo), "-o", str(tmp_path / "out"), "--pretrained", "eccv16", "--weights", str(path)]
    assert colorize_main([*argv, "--size", "32", "--temperature", "0.38373"]) == 0
    out = np.asarray(Image.open(tmp_path / "out" / "photo.png"))
    assert out.shape == (40, 56, 3)
    # and a copy dropped into the cache is found there
    cache.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, cache / path.name)
    load_pretrained("eccv16")


def test_misfitting_state_dicts_are_refused_before_anything_is_copied(release, tmp_path) -> None:
    """A missing or extra key, another shape or another decoding matrix: one line, the network untouched."""
    path, state, _, _ = release
    net = ZhangNet(width=1, out_channels=313)
    snapshot = {k: v.clone() for k, v in net.state_dict().items()}
    good = eccv16_to_zhangnet(state)
    missing = {k: v for k, v in good.items() if k != "blocks.6.4.bias"}
    extra = {**good, "blocks.7.9.weight": torch.zeros(3)}
    shape = {**good, "head.weight": torch.zeros(312, 256, 1, 1)}
    for bad, needle in ((missing, "missing: blocks.6.4.bias"), (extra, "unexpected: blocks.7.9.weight"),
                        (shape, "head.weight is [312, 256, 1, 1] in the file")):  # fmt: skip
        with pytest.raises(ColorizationError, match=re.escape(needle)) as err:
            load_state(net, bad, "eccv16 weights")
        assert "\n" not in str(err.value)
        assert all(torch.equal(v, snapshot[k]) for k, v in net.state_dict().items())  # no partial load
    shifted = {**state, "model_out.weight": state["model_out.weight"].flip(1)}
    with pytest.raises(ColorizationError, match="not the 313 bin centres"):
        eccv16_to_zhangnet(shifted)
    torch.save({k: v for k, v in state.items() if k != "model7.4.bias"}, tmp_path / "cut.pth")
    with pytest.raises(ColorizationError, match=r"missing: blocks\.6\.4\.bias"):
        load_published("eccv16", weights=tmp_path / "cut.pth")


def test_fine_tuning_starts_from_the_release(release, cache, monkeypatch) -> None:
    """model.init=eccv16 (from the cache, dropped in by hand) and model.init=PATH of a copy of the release
    load the released weights into the objective's network when Lightning would start."""
    path, state, _, _ = release
    point_registry(monkeypatch, closed_port_url(path.name), prefix_of(path))
    cache.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, cache / path.name)
    expected = eccv16_to_zhangnet(state)
    for init in ("eccv16", str(path)):
        module = ClassificationModule(
            {"_target_": "colorization.nets.ZhangNet"}, adam(), prior="uniform", init=init, freeze=2,
            perceptual_metrics=False,
        )  # fmt: skip
        module.load_init_weights()
        got = module.net.state_dict()
        assert all(torch.equal(got[k], v) for k, v in expected.items())
        assert not any(p.requires_grad for p in module.net.blocks[:2].parameters())
        assert all(p.requires_grad for p in module.net.blocks[2:].parameters())


@pytest.mark.slow
def test_onnx_export_of_the_release(release, tmp_path) -> None:
    """python -m colorization.export --pretrained eccv16 --weights PATH: the graph decodes at the release's
    T = 1 and matches PyTorch (export's own parity check), and colorize --onnx reads it."""
    pytest.importorskip("onnxruntime")
    from colorization.inference.export import main as export_main

    path, state, _, _ = release
    onnx_file = tmp_path / "eccv16.onnx"
    assert export_main(["--pretrained", "eccv16", "--weights", str(path), "-o", str(onnx_file)]) == 0
    colorizer = Colorizer.from_onnx(onnx_file)
    assert colorizer.info.temperature == 1.0 and colorizer.info.objective == "classification"
    L_n = (np.random.default_rng(2).random((1, 1, 32, 32)) - 0.5).astype(np.float32)
    ref = eccv16_reference(state, torch.from_numpy(L_n)).numpy()
    np.testing.assert_allclose(colorizer.backend(L_n), ref, atol=2e-3)


@pytest.mark.slow
def test_bundle_from_published_weights(release, tmp_path) -> None:
    """--pretrained eccv16 --bundle DIR: the bundle's runtime (logits, numpy annealed mean at the release's
    T = 1, PIL upsampling) gives the reference forward's ab."""
    pytest.importorskip("onnxruntime")
    from colorization.export import main as export_main
    from colorization.imaging.runtime import Model

    path, state, _, _ = release
    folder = tmp_path / "bundle"
    assert export_main(["--pretrained", "eccv16", "--weights", str(path), "--bundle", str(folder)]) == 0
    model = Model(folder / "model.onnx")
    assert model.logits and model.temperature == 1.0 and model.stride == 4 and model.image_size == 256
    L_n = (np.random.default_rng(2).random((1, 1, 32, 32)) - 0.5).astype(np.float32)
    ref = eccv16_reference(state, torch.from_numpy(L_n)).numpy()
    np.testing.assert_allclose(model(L_n), ref, atol=2e-3)
