"""``python -m bitmill`` runs the command-line interface."""

import sys

from bitmill.cli import main

sys.exit(main())
