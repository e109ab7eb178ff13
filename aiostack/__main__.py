"""``python -m aiostack`` is the ``aiostack`` command (see :mod:`aiostack.cli`)."""

import sys

from .cli import main

sys.exit(main())
