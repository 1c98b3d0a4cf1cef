"""The networks: shapes and strides, paper sizes at width 1, gradients, fallbacks, pretrained weights."""

from __future__ import annotations

import importlib.util
import io
import os
import sys
import types
import warnings

import pytest
import torch
from torch import nn

from colorization.errors import ConfigError
from colorization.nets import (
    AttentionGate,
    BaselineCNN,
    KoalaNet,
    PatchGAN,
    UNetGenerator,
    ZhangNet,
)
from colorization.nets import common as nets_common
from colorization.nets import resnet as nets_resnet
from colorization.nets.patchgan import patchgan_receptive_field
from colorization.nets.resnet import RESNET_URLS, ResNetEncoder

Q = 313

# Small configurations of every generator (fast on CPU); (name, factory, input size).
SMALL_NETS = [
    ("zhang", lambda **kw: ZhangNet(width=1 / 16, **kw), 32),
    ("cnn_small7", lambda **kw: BaselineCNN(variant="small7", width=0.5, **kw), 32),
    ("cnn_deep8", lambda **kw: BaselineCNN(variant="deep8", width=0.25, **kw), 32),
    ("koala", lambda **kw: KoalaNet(width=1 / 16, extractor="small", **kw), 32),
    ("unet", lambda **kw: UNetGenerator(num_downs=4, base_channels=8, **kw), 32),
    ("attention_unet", lambda **kw: UNetGenerator(num_downs=5, base_channels=8, attention=True, **kw), 32),
    ("resnet_unet", lambda **kw: UNetGenerator(encoder="resnet18", width=1 / 16, pretrained=False, **kw), 64),
    (
        "resnet34_attention_unet",
        lambda **kw: UNetGenerator(encoder="resnet34", width=1 / 16, pretrained=False, attention=True, **kw),
        64,
    ),
]
IDS = [name for name, _, _ in SMALL_NETS]


@pytest.fixture(autouse=True)
def _fresh_warnings():
    """Each test sees the one-time fallback warnings as if the process had just started."""
    nets_common._WARNED.clear()
    yield
    nets_common._WARNED.clear()


@pytest.fixture
def no_resnet_weights(monkeypatch):
    """Make the ResNet weights unavailable without touching the network."""

    def fail(arch):
        raise OSError(f"no cached {arch} weights and no network")

    monkeypatch.setattr(nets_resnet, "fetch_resnet_state_dict", fail)


# -- shapes, strides, interface ---------------------------------------------------------------------
@pytest.mark.parametrize("out_channels", [2, Q])
@pytest.mark.parametrize("name,factory,size", SMALL_NETS, ids=IDS)
def test_output_shape_and_stride(name, factory, size, out_channels):
    torch.manual_seed(0)
    net = factory(out_channels=out_channels)
    assert isinstance(net.size_multiple, int) and size % net.size_multiple == 0
    assert net.output_stride == (4 if name == "zhang" else 1)
    h, w = size, 2 * size
    y = net(torch.randn(2, 1, h, w))
    s = net.output_stride
    assert y.shape == (2, out_channels, h // s, w // s)
    assert torch.isfinite(y).all()


def test_size_multiples():
    """Each instance's multiple, and the class rule that states it before building (for given arguments)."""
    assert ZhangNet.input_multiple(width=1) == 8 and BaselineCNN.input_multiple() == 4
    assert KoalaNet.input_multiple() == 8
    assert UNetGenerator.input_multiple() == 256 and UNetGenerator.input_multiple(num_downs=7) == 128
    assert UNetGenerator.input_multiple(num_downs=6, encoder="resnet18") == 32
    assert ZhangNet(width=1 / 16).size_multiple == 8
    assert BaselineCNN(width=0.25).size_multiple == 4
    assert KoalaNet(width=1 / 16, extractor="small").size_multiple == 8
    assert UNetGenerator(num_downs=3, base_channels=4).size_multiple == 8
    assert UNetGenerator(encoder="resnet18", width=1 / 16, pretrained=False).size_multiple == 32


@pytest.mark.parametrize("name,factory,size", SMALL_NETS, ids=IDS)
def test_bad_input_size_is_a_one_line_error(name, factory, size):
    net = factory()
    with pytest.raises(ValueError, match="divisible by") as info:
        net(torch.randn(1, 1, size + net.size_multiple // 2 + 1, size))
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match="expects"):
        net(torch.randn(1, 3, size, size))


def test_hydra_instantiate_with_out_channels_keyword():
    import hydra.utils as hydra_utils  # a core dependency: a broken install must fail here, not skip

    specs = {
        "colorization.nets.ZhangNet": {"width": 1 / 16},
        "colorization.nets.BaselineCNN": {"variant": "deep8", "width": 0.25},
        "colorization.nets.KoalaNet": {"width": 1 / 16, "extractor": "small"},
        "colorization.nets.UNetGenerator": {"num_downs": 3, "base_channels": 4},
    }
    for target, kwargs in specs.items():
        for out_channels in (2, Q):
            spec = {"_target_": target, **kwargs}
            net = hydra_utils.instantiate(spec, in_channels=1, out_channels=out_channels)
            assert net(torch.randn(1, 1, 32, 32)).shape[1] == out_channels
    spec = {"_target_": "colorization.nets.PatchGAN", "base_channels": 8}
    disc = hydra_utils.instantiate(spec, in_channels=3)
    assert disc(torch.randn(1, 3, 64, 64)).shape[1] == 1


@pytest.mark.parametrize(
    "bad",
    [{"width": 0}, {"out_channels": 0}, {"in_channels": 1.5}, {"final_activation": "sigmoid"}],
)
def test_bad_arguments(bad):
    for cls in (ZhangNet, BaselineCNN, UNetGenerator):
        with pytest.raises(ValueError):
            cls(**bad)
    with pytest.raises(ValueError, match="variant"):
        BaselineCNN(variant="tiny")
    with pytest.raises(ValueError, match="encoder"):
        UNetGenerator(encoder="vgg16")


@pytest.mark.parametrize("name,factory,size", SMALL_NETS, ids=IDS)
def test_final_activation(name, factory, size):
    torch.manual_seed(0)
    x = 20 * torch.randn(2, 1, size, size)  # a large input drives raw outputs well outside [-1, 1]
    bounded = factory(out_channels=2, final_activation="tanh")(x)
    assert bounded.abs().max() <= 1.0
    raw = factory(out_channels=Q)
    assert isinstance(raw.final, nn.Identity)  # class logits are never squashed
    with pytest.raises(ValueError, match="final_activation=None"):
        factory(out_channels=Q, final_activation="tanh")


# -- parameter counts at width 1 (built on the meta device: no memory, no time) ---------------------
def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _meta_count(factory) -> int:
    with torch.device("meta"):
        return count_parameters(factory())


def _conv(c_in: int, c_out: int, k: int = 3, bias: bool = True) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


def test_zhang_width1_is_the_papers_32m():
    # the table: blocks 1-7 of 3×3 convolutions + batch norm; block 8: 4×4 transposed conv + 2 convs
    blocks = [(2, 64), (2, 128), (3, 256), (3, 512), (3, 512), (3, 512), (3, 512)]
    expected, c_in = 0, 1
    for n, c in blocks:
        for _ in range(n):
            expected += _conv(c_in, c)
            c_in = c
        expected += 2 * c  # batch norm
    expected += _conv(512, 256, k=4) + 2 * _conv(256, 256) + _conv(256, Q, k=1)
    got = _meta_count(lambda: ZhangNet(out_channels=Q))
    assert got == expected
    assert abs(got - 32e6) / 32e6 < 0.03  # "32M parameters" (Zhang et al.'s released model: 32.2M)
    with torch.device("meta"):
        net = ZhangNet(out_channels=Q)
    # report 001: 8 blocks totalling 22 convolutions (the 1×1 output projection aside)
    convs = [m for m in net.blocks.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert len(convs) == 22
    assert sum(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == 7


def test_small7_is_about_30k_and_deep8_structure():
    n = count_parameters(BaselineCNN(variant="small7"))
    assert 27_000 <= n <= 33_000, n  # report 000: "approximately 30k parameters"
    net = BaselineCNN(variant="small7")
    assert sum(isinstance(m, nn.Conv2d) for m in net.modules()) == 7
    deep = BaselineCNN(variant="deep8", final_activation="tanh")
    convs = [m for m in deep.modules() if isinstance(m, nn.Conv2d)]
    # report 004: filters 16, 32, 64, 128, 256, 128, 64, 64, 32, 2; LeakyReLU + BN on all but the last; tanh
    assert [m.out_channels for m in convs] == [16, 32, 64, 128, 256, 128, 64, 64, 32, 2]
    assert sum(isinstance(m, nn.LeakyReLU) for m in deep.modules()) == 9
    assert sum(isinstance(m, nn.BatchNorm2d) for m in deep.modules()) == 9
    assert sum(isinstance(m, nn.MaxPool2d) for m in deep.modules()) == 2
    assert isinstance(deep.final, nn.Tanh)


def _pix2pix_unet_count(in_nc: int, out_nc: int, ngf: int, num_downs: int) -> int:
    """pix2pix's recursive U-Net block structure, counted independently of our list-based implementation."""

    def block(outer: int, inner: int, sub: int, input_nc: int | None = None, where: str = "mid") -> int:
        input_nc = outer if input_nc is None else input_nc
        down = _conv(input_nc, inner, k=4, bias=False)
        if where == "outermost":
            return down + sub + _conv(2 * inner, outer, k=4)
        if where == "innermost":
            return down + _conv(inner, outer, k=4, bias=False) + 2 * outer
        return down + 2 * inner + sub + _conv(2 * inner, outer, k=4, bias=False) + 2 * outer

    total = block(ngf * 8, ngf * 8, 0, where="innermost")
    for _ in range(num_downs - 5):
        total = block(ngf * 8, ngf * 8, total)
    total = block(ngf * 4, ngf * 8, total)
    total = block(ngf * 2, ngf * 4, total)
    total = block(ngf, ngf * 2, total)
    return block(out_nc, ngf, total, input_nc=in_nc, where="outermost")


def test_unet_width1_is_pix2pix():
    got = _meta_count(lambda: UNetGenerator(in_channels=3, out_channels=3))
    assert got == _pix2pix_unet_count(3, 3, 64, 8)
    assert round(got / 1e6, 3) == 54.414  # pix2pix's unet_256 log: "Total number of parameters : 54.414 M"
    assert _meta_count(lambda: UNetGenerator()) == _pix2pix_unet_count(1, 2, 64, 8)
    with torch.device("meta"):
        net = UNetGenerator()
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == 3  # pix2pix: num_downs - 5 deep blocks
    assert net.size_multiple == 256


def test_patchgan_is_pix2pix_70():
    # pix2pix's basic discriminator on a 3+3-channel pair logs "Total number of parameters : 2.769 M"
    assert round(count_parameters(PatchGAN(in_channels=6)) / 1e6, 3) == 2.769
    assert patchgan_receptive_field(3) == 70
    assert PatchGAN(base_channels=8)(torch.randn(1, 3, 256, 256)).shape == (1, 1, 30, 30)


def test_patchgan_receptive_field_by_gradient():
    torch.manual_seed(0)
    disc = PatchGAN(in_channels=3, base_channels=4, n_layers=3).double().eval()
    x = torch.randn(1, 3, 160, 160, dtype=torch.float64, requires_grad=True)
    y = disc(x)
    i, j = y.shape[2] // 2, y.shape[3] // 2
    y[0, 0, i, j].backward()
    touched = x.grad.abs().sum(dim=(0, 1)) > 0
    rows = touched.any(dim=1).nonzero().flatten()
    cols = touched.any(dim=0).nonzero().flatten()
    assert 0 < rows.min() and rows.max() < 159  # the field lies inside the image: nothing clipped
    assert rows.max() - rows.min() + 1 == 70
    assert cols.max() - cols.min() + 1 == 70


def test_resnet_trunks_match_torchvision_sizes():
    # torchvision's resnet18 / resnet34 have 11,689,512 / 21,797,672 parameters, fc (512·1000 + 1000) included
    fc = 512 * 1000 + 1000
    assert count_parameters(ResNetEncoder("resnet18")) == 11_689_512 - fc
    assert _meta_count(lambda: ResNetEncoder("resnet34")) == 21_797_672 - fc


# -- gradients and modes ----------------------------------------------------------------------------
@pytest.mark.parametrize("name,factory,size", SMALL_NETS, ids=IDS)
def test_gradients_reach_every_parameter(name, factory, size):
    torch.manual_seed(0)
    net = factory(out_channels=2)
    net.train()
    x = torch.randn(2, 1, size, size)
    net(x).square().mean().backward()
    for pname, p in net.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


def test_unet_dropout_is_active_in_train_only():
    torch.manual_seed(0)
    net = UNetGenerator(num_downs=6, base_channels=2, dropout=0.5)
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == 1
    x = torch.randn(2, 1, 64, 64)
    net.eval()
    assert torch.equal(net(x), net(x))
    net.train()
    assert not torch.equal(net(x), net(x))
    no_dropout = UNetGenerator(num_downs=6, base_channels=2, dropout=0)
    assert not any(isinstance(m, nn.Dropout) for m in no_dropout.modules())


def test_attention_gate_weights_are_in_unit_interval():
    torch.manual_seed(0)
    gate = AttentionGate(6, 4)
    skip, g = torch.randn(2, 6, 8, 8), torch.randn(2, 4, 8, 8)
    a = gate.attention(skip, g)
    assert a.shape == (2, 1, 8, 8) and (a > 0).all() and (a < 1).all()
    torch.testing.assert_close(gate(skip, g), skip * a)
    net = UNetGenerator(num_downs=4, base_channels=4, attention=True)
    assert sum(isinstance(m, AttentionGate) for m in net.modules()) == 3  # every skip is gated


# -- ResNet encoder: torchvision names, weight loading, fallback ------------------------------------
def _torchvision_resnet_keys(depths: tuple[int, int, int, int]) -> set[str]:
    """State-dict keys of torchvision's ResNet(BasicBlock, depths), following torchvision's resnet.py."""

    def bn(prefix: str) -> list[str]:
        names = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
        return [f"{prefix}.{s}" for s in names]

    keys = ["conv1.weight", *bn("bn1")]
    inplanes = 64
    for k, (planes, blocks) in enumerate(zip((64, 128, 256, 512), depths, strict=True)):
        stride = 1 if k == 0 else 2
        for j in range(blocks):
            p = f"layer{k + 1}.{j}"
            keys += [f"{p}.conv1.weight", *bn(f"{p}.bn1"), f"{p}.conv2.weight", *bn(f"{p}.bn2")]
            if j == 0 and (stride != 1 or inplanes != planes):
                keys += [f"{p}.downsample.0.weight", *bn(f"{p}.downsample.1")]
        inplanes = planes
    return set(keys + ["fc.weight", "fc.bias"])


@pytest.mark.parametrize("arch,depths", [("resnet18", (2, 2, 2, 2)), ("resnet34", (3, 4, 6, 3))])
def test_resnet_encoder_keys_match_torchvision(arch, depths):
    with torch.device("meta"):
        enc = ResNetEncoder(arch)
    expected = {k for k in _torchvision_resnet_keys(depths) if not k.startswith("fc.")}
    assert set(enc.state_dict()) == expected
    assert tuple(enc.conv1.weight.shape) == (64, 3, 7, 7)
    assert tuple(enc.layer4[0].downsample[0].weight.shape) == (512, 256, 1, 1)


def test_resnet_keys_against_installed_torchvision():
    if importlib.util.find_spec("torchvision") is None:
        pytest.skip(
            "torchvision is not installed (by design: it breaks lightning here); key names are "
            "checked against torchvision's source-derived list instead"
        )
    import torchvision

    tv = torchvision.models.resnet18(weights=None)
    expected = {k for k in tv.state_dict() if not k.startswith("fc.")}
    assert set(ResNetEncoder("resnet18").state_dict()) == expected


def test_pretrained_resnet_weights_load(monkeypatch):
    torch.manual_seed(1)
    source = ResNetEncoder("resnet18")
    for p in source.parameters():
        nn.init.normal_(p)
    # a torchvision checkpoint: the trunk, a classifier, no num_batches_tracked (older files lack it)
    state = {k: v.clone() for k, v in source.state_dict().items() if not k.endswith("num_batches_tracked")}
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    asked = []
    monkeypatch.setattr(nets_resnet, "fetch_resnet_state_dict", lambda arch: asked.append(arch) or state)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning when the weights are there
        net = UNetGenerator(encoder="resnet18", pretrained=True)
    assert asked == ["resnet18"] and net.pretrained_loaded
    torch.testing.assert_close(net.encoder.conv1.weight, source.conv1.weight)
    torch.testing.assert_close(net.encoder.layer4[1].bn2.running_var, source.layer4[1].bn2.running_var)


def test_resnet_fallback_warns_once(no_resnet_weights):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = UNetGenerator(encoder="resnet18", pretrained=True)
        UNetGenerator(encoder="resnet18", pretrained=True)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1 and "random weights" in messages[0] and "\n" not in messages[0]
    assert not a.pretrained_loaded
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        UNetGenerator(encoder="resnet18", width=0.25, pretrained=True)
    assert len(caught) == 1 and "width=1" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        UNetGenerator(encoder="resnet34", width=1 / 16, pretrained=False)  # not asked for: nothing to say


def test_cached_torchvision_resnet18_loads():
    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(RESNET_URLS["resnet18"]))
    if not os.path.exists(path):
        pytest.skip(f"torchvision's resnet18 weights are not cached at {path} (no network here)")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = UNetGenerator(encoder="resnet18", pretrained=True)
    assert net.pretrained_loaded


# -- KoalaNet extractors ----------------------------------------------------------------------------
class _FakeInception(nn.Module):
    """Stands in for timm's Inception-ResNet-v2: records what it sees."""

    num_classes = 10
    pretrained_cfg = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "input_size": (3, 299, 299)}

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=8)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, self.num_classes)
        self.seen: list[tuple[tuple[int, ...], bool]] = []

    def forward(self, x):
        self.seen.append((tuple(x.shape), self.training))
        return self.fc(self.bn(self.conv(x)).mean(dim=(2, 3)))


def _fake_timm(fail_pretrained: bool = False) -> types.ModuleType:
    mod = types.ModuleType("timm")

    def create_model(name, pretrained=False):
        assert name == "inception_resnet_v2"
        if pretrained and fail_pretrained:
            raise RuntimeError("cannot download weights: no network")
        return _FakeInception()

    mod.create_model = create_model
    return mod


def test_koala_auto_falls_back_once_without_timm(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # import fails as if timm were not installed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = KoalaNet(width=1 / 16)
        KoalaNet(width=1 / 16, extractor="auto")
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1 and "small built-in extractor" in messages[0] and "\n" not in messages[0]
    assert a.extractor_name == "small"
    with pytest.raises(ConfigError, match="needs timm"):
        KoalaNet(width=1 / 16, extractor="inception_resnet_v2")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KoalaNet(width=1 / 16, extractor="small")  # chosen on purpose: nothing to say
    with pytest.raises(ValueError, match="extractor"):
        KoalaNet(extractor="vgg")


def test_koala_auto_falls_back_when_weights_unavailable(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", _fake_timm(fail_pretrained=True))
    with pytest.warns(UserWarning, match="RuntimeError: cannot download weights"):
        net = KoalaNet(width=1 / 16, extractor="auto", pretrained=True)
    assert net.extractor_name == "small"


def test_koala_with_timm_extractor_is_frozen_and_fed_rgb_299(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", _fake_timm())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = KoalaNet(width=1 / 16, extractor="auto", pretrained=True)
    assert net.extractor_name == "inception_resnet_v2"
    fake = net.extractor.model
    assert all(not p.requires_grad for p in fake.parameters())
    net.train()
    x = torch.rand(2, 1, 32, 32) - 0.5
    y = net(x)
    assert y.shape == (2, 2, 32, 32)
    assert fake.seen == [((2, 3, 299, 299), False)]  # gray replicated to RGB, resized, backbone in eval mode
    y.mean().backward()
    assert all(p.grad is None for p in fake.parameters())
    assert net.fusion[0].weight.grad is not None and net.fusion[0].weight.shape[1] == 16 + 10
    # not pretrained: a trainable backbone
    net2 = KoalaNet(width=1 / 16, extractor="inception_resnet_v2", pretrained=False)
    assert all(p.requires_grad for p in net2.extractor.parameters())


@pytest.mark.slow
def test_koala_with_real_timm():
    pytest.importorskip("timm", reason="timm is not installed (the 'perceptual' extra)")
    net = KoalaNet(width=1 / 16, extractor="inception_resnet_v2", pretrained=False).eval()
    assert net(torch.rand(1, 1, 32, 32) - 0.5).shape == (1, 2, 32, 32)


# -- export -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,factory,size", [SMALL_NETS[i] for i in (0, 2, 3, 5, 6)], ids=[IDS[i] for i in (0, 2, 3, 5, 6)]
)
def test_onnx_export_with_dynamic_size(name, factory, size):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    net = factory(out_channels=Q if name == "zhang" else 2).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            (torch.randn(1, 1, size, size),),
            buf,
            dynamo=False,
            input_names=["L"],
            output_names=["out"],
            dynamic_axes={"L": {0: "b", 2: "h", 3: "w"}},
        )
    session = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    x = torch.randn(2, 1, 2 * size, size)
    (got,) = session.run(None, {"L": x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(got), net(x), rtol=1e-4, atol=1e-4)
