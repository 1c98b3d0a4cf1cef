"""Automatic image colorization: Lab data, three objectives, the networks of the papers, and tools to ship them."""

__version__ = "0.1.0"
