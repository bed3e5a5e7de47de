"""Allow ``python -m polyakcheck``."""

import sys

from polyakcheck.cli import main

sys.exit(main())
