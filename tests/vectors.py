"""Where the captured mmate-go wire vectors are: ``tests/data/mmate-go`` in this repository (a plain
clone runs the wire tests), or the folder named by ``$MMATE_VECTORS`` (an override, e.g. a newer
capture). An override that is not a folder is an error, never a silent fallback."""
from __future__ import annotations

import os
from pathlib import Path

#: the copy in the repository (with its README: producer, capture method, what each vector shows)
IN_REPO = Path(__file__).resolve().parent / "data" / "mmate-go"


def find(override: str | None = None) -> Path:
    """The vector folder: ``override`` (``$MMATE_VECTORS`` by default) when set, else IN_REPO."""
    env = os.environ.get("MMATE_VECTORS") if override is None else override
    if env:
        path = Path(env)
        if not path.is_dir():
            raise FileNotFoundError(f"MMATE_VECTORS={env!r} is not a folder: point it at a folder of "
                                    "mmate-go vectors (*.body.json + *.amqp.json), or unset it to use "
                                    f"the copy in the repository ({IN_REPO})")
        return path
    if not IN_REPO.is_dir():
        raise FileNotFoundError(f"the mmate-go vectors are missing from the repository ({IN_REPO}): "
                                "restore tests/data/mmate-go from git, or set MMATE_VECTORS")
    return IN_REPO


VECTORS: Path = find()
