"""Automatic image colorization: Lab data, three objectives, the papers' networks, and tools to ship them."""

__version__ = "0.1.0"
