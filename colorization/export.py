"""``python -m colorization.export``: checkpoint → ONNX or a deploy bundle, kept at its documented address.

The code is colorization.inference.export; `--calibrate data=NAME` is resolved here through the app (the
only code that knows Hydra): the train split of that data config, as `python train.py data=NAME` has it.
"""

import sys
from collections.abc import Sequence

from colorization.inference.export import main as export_main

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the export command with the app's data splits for --calibrate data=NAME."""
    from colorization.app.splits import train_photos

    return export_main(argv, resolve=train_photos)


if __name__ == "__main__":
    sys.exit(main())
