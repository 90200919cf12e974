"""``python -m antialias.reproduce``: the same as ``antialias reproduce``."""

import sys

from antialias.reproduce._cli import main

sys.exit(main())
