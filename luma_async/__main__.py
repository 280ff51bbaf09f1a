"""``python -m luma_async``: the same as the ``luma-async`` command."""

from __future__ import annotations

import sys

from luma_async._cli import main

if __name__ == "__main__":
    sys.exit(main())
