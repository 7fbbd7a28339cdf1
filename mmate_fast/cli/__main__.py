"""``python -m mmate_fast.cli``: the ``mmate`` command without the console script."""
import sys

from mmate_fast.cli import main

sys.exit(main())
