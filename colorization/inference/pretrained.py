"""Published models (colorization.nets.registry) as inference models: `colorize --pretrained eccv16`.

The registry says how each release reads its output, and this is where that is honoured: ECCV16's logits
are decoded by the annealed mean over ABGamut.zhang()'s bins at the registry's temperature (T = 1, the
released forward's plain mean; `temperature` overrides it, e.g. 0.38373 for the Caffe demo's 2.606 logit
scale) and upsampled bilinearly ×4; SIGGRAPH17's tanh output is ab/110 at full resolution and takes user
hints. torch is imported inside the function, so importing this module stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from colorization.errors import ColorizationError
from colorization.inference.backends import torch_device
from colorization.inference.info import ModelInfo

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["load_pretrained"]


def load_pretrained(
    name: str,
    weights: str | Path | None = None,
    temperature: float | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> tuple[torch.nn.Module, ModelInfo]:
    """The inference model (L_n [, hints] → ab in Lab units) of a published model, and what is known about it.

    `weights`: a copy of the released file to use instead of the cache or the download (`--weights`).
    """
    from colorization.color import ABGamut
    from colorization.nets.registry import load_published, published
    from colorization.objectives import ABInference, AnnealedMeanInference

    entry = published(name)
    dev = torch_device(device)
    if temperature is not None:
        if entry.objective != "classification":
            raise ColorizationError(
                f"--temperature applies to classification models only; {name} predicts ab"
            )
        if not temperature > 0:
            raise ColorizationError(f"--temperature must be > 0, got {temperature}")
    net, entry = load_published(entry, weights, progress=progress)
    stride = int(net.output_stride)
    t_used = None
    if entry.objective == "classification":
        t_used = float(temperature if temperature is not None else entry.temperature)
        model = AnnealedMeanInference(net, ABGamut.zhang().points, t_used, stride)
    else:
        model = ABInference(net, stride)
    source = str(weights) if weights is not None else entry.url
    info = ModelInfo(
        objective=entry.objective,
        image_size=entry.image_size,
        size_multiple=int(net.size_multiple),
        temperature=t_used,
        source=f"{entry.name} ({Path(source).name})",
        hints=entry.takes_hints,
    )
    return model.to(dev).eval(), info
