"""Where the captured mmate-go wire vectors are: ``$MMATE_VECTORS``, else ``shared/`` beside the
checkout (how CI lays it out), else the team's ``/work/shared``."""
from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]


def _find() -> Path:
    env = os.environ.get("MMATE_VECTORS")
    candidates = [Path(env)] if env else []
    candidates += [_REPO.parent / "shared" / "vectors" / "mmate-go", Path("/work/shared/vectors/mmate-go")]
    for c in candidates:
        if c.is_dir():
            return c
    raise FileNotFoundError(
        "mmate-go vectors not found: set MMATE_VECTORS or put shared/ beside the checkout")


VECTORS: Path = _find()
