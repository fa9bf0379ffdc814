"""``python -m aurous_async._cli``: the ``aurous`` command."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
