"""``python -m colorization.export``: checkpoint → ONNX, kept at its documented address.

The code is colorization.inference.export.
"""

import sys

from colorization.inference.export import main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
