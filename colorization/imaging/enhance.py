"""The saturation enhancer in numpy, float32: the torch-free twin of colorization.color.enhance for ONNX.

One algorithm in both backends: HSV saturation s = (max − min)/max is raised to
s' = s·(1 + w·exp(−|β(s − c)|^α)), clipped to [0, 1], with hue and value kept. The implementation is
colorization.imaging.runtime's (the deploy bundle's runtime), re-exported here.
"""

from colorization.imaging.runtime import enhance_saturation

__all__ = ["enhance_saturation"]
