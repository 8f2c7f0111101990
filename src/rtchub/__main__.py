"""``python -m rtchub`` is the ``rtchub`` command."""

import sys

from rtchub.cli import main

sys.exit(main())
