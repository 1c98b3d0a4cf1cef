"""Procedural scenes whose colour follows from texture and shape, with one deliberately multimodal region.

Each scene (seed -> image, fully deterministic) holds:
- sky: a smooth vertical gradient, always blue (light near the horizon);
- grass: a noisy, vertically streaked texture below the horizon, always green;
- a brick wall: a regular brick pattern with light mortar lines, always terracotta;
- a fruit: a smooth shaded disk with a dark stem, RED OR GREEN with probability 1/2 each and the SAME
  lightness map either way. Its colour cannot be told from L: this is the multimodal region. Regression
  averages it towards a brownish gray, a good classifier keeps it saturated. `synthetic_scene` returns its
  mask so that colourfulness can be measured there (see `synthetic_batch`).
"""

from __future__ import annotations

import numpy as np
import torch

from colorization.imaging import lab_to_rgb

SKY_TOP = np.array([60.0, 115.0, 215.0])
SKY_HORIZON = np.array([165.0, 200.0, 240.0])
GRASS = np.array([70.0, 150.0, 45.0])
BRICK = np.array([175.0, 75.0, 50.0])
MORTAR = np.array([205.0, 200.0, 190.0])
FRUIT_AB = {"red": (62.0, 42.0), "green": (-48.0, 50.0)}
"""Lab chroma of the two fruit kinds; both share the same L map, so L alone cannot decide between them."""


def synthetic_scene(seed: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Render scene number seed at size×size: (RGB uint8 H×W×3, fruit mask bool H×W)."""
    if size < 8:
        raise ValueError(f"synthetic scenes need size >= 8, got {size}")
    rng = np.random.default_rng(seed)
    s = size
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float64)
    img = np.zeros((s, s, 3))

    horizon = int(s * rng.uniform(0.35, 0.6))
    t = (yy / max(horizon, 1)).clip(0, 1)[..., None]
    img[:] = SKY_TOP * (1 - t) + SKY_HORIZON * t

    ground = yy >= horizon
    grain = rng.uniform(0.55, 1.25, size=(s, s))
    streaks = rng.uniform(0.8, 1.15, size=(1, s))
    texture = (grain * streaks)[..., None]
    img[ground] = (GRASS * texture)[ground]

    # brick wall standing on the ground
    wall_w = int(s * rng.uniform(0.25, 0.45))
    wall_x = int(rng.integers(0, s - wall_w + 1))
    wall_top = int(horizon * rng.uniform(0.2, 0.7))
    wall_bottom = min(s, horizon + int(s * rng.uniform(0.05, 0.2)))
    brick_h = max(2, s // 16)
    brick_w = max(4, s // 8)
    in_wall = (xx >= wall_x) & (xx < wall_x + wall_w) & (yy >= wall_top) & (yy < wall_bottom)
    row = ((yy - wall_top) // brick_h).astype(int)
    offset = (row % 2) * (brick_w // 2)
    mortar = ((yy - wall_top) % brick_h == 0) | ((xx - wall_x + offset) % brick_w == 0)
    shade = 0.85 + 0.3 * rng.random((s // brick_h + 2, s // brick_w + 3))
    brick_shade = shade[
        row.clip(0, shade.shape[0] - 1),
        ((xx - wall_x + offset) // brick_w).astype(int).clip(0, shade.shape[1] - 1),
    ]
    bricks = BRICK * brick_shade[..., None]
    img[in_wall & ~mortar] = bricks[in_wall & ~mortar]
    img[in_wall & mortar] = MORTAR

    # the fruit: a shaded disk on the grass, red or green
    radius = s * rng.uniform(0.1, 0.17)
    cx = rng.uniform(radius, s - radius)
    cy = rng.uniform(max(horizon, radius), s - radius)
    dist = np.hypot(xx - cx, yy - cy)
    mask = dist <= radius
    kind = "red" if rng.random() < 0.5 else "green"
    hx, hy = cx - 0.35 * radius, cy - 0.35 * radius
    highlight = np.hypot(xx - hx, yy - hy) / (1.6 * radius)
    lightness = (62.0 - 22.0 * highlight.clip(0, 1))[mask]
    a, b = FRUIT_AB[kind]
    lab = np.stack([lightness, np.full_like(lightness, a), np.full_like(lightness, b)], axis=-1)
    img[mask] = lab_to_rgb(lab) * 255.0
    stem = (
        (np.abs(xx - cx) <= max(0.5, s / 64)) & (yy < cy - radius + 1) & (yy >= cy - radius - max(2, s // 20))
    )
    img[stem & ~mask] = (80.0, 55.0, 30.0)

    return np.clip(img + 0.5, 0, 255).astype(np.uint8), mask


def synthetic_batch(count: int, size: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Scenes seed..seed+count-1 as float RGB B×3×H×W in [0,1] and their fruit masks B×1×H×W (bool)."""
    scenes = [synthetic_scene(seed + i, size) for i in range(count)]
    rgb = torch.from_numpy(np.stack([s[0] for s in scenes])).permute(0, 3, 1, 2).float() / 255.0
    mask = torch.from_numpy(np.stack([s[1] for s in scenes]))[:, None]
    return rgb, mask
