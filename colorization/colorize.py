"""``python -m colorization.colorize``: the colorize command, kept at its documented address.

The code lives in colorization.inference (cli: the command; colorizer: the Colorizer; files, backends,
info). `Colorizer` is re-exported here for ``from colorization.colorize import Colorizer``.
"""

import sys

from colorization.inference.cli import main
from colorization.inference.colorizer import Colorizer

__all__ = ["Colorizer", "main"]

if __name__ == "__main__":
    sys.exit(main())
