"""`python -m colorization.turing prepare|serve|results` (see colorization.turing.cli)."""

import sys

from colorization.turing.cli import main

sys.exit(main())
