"""``python -m mmate_fast.fleet CONFIG_JSON``: one worker of a fleet (the supervisor starts these)."""
import sys

from mmate_fast.fleet._worker import main

sys.exit(main())
