"""``python -m antialias.train ...``: the same as ``antialias train ...`` (works under torchrun)."""

import sys

from antialias.train._cli import main

if __name__ == "__main__":
    sys.exit(main())
