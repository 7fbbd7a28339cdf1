"""Pick the compiled module or its pure-Python twin.

``MMATE_NO_EXTENSIONS=1`` forces the twins. ``MMATE_REQUIRE_EXTENSIONS=1`` turns a missing compiled
module into an ImportError instead of a silent fallback (CI uses it so a broken build cannot hide).
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

NO_EXTENSIONS = os.environ.get("MMATE_NO_EXTENSIONS") == "1"
REQUIRE_EXTENSIONS = os.environ.get("MMATE_REQUIRE_EXTENSIONS") == "1"

#: name -> True when the compiled module is in use
COMPILED: dict[str, bool] = {}


def load(name: str) -> ModuleType:
    """Return ``mmate_fast._cy.<name>`` unless disabled or missing, else ``mmate_fast._py.<name>``."""
    if not NO_EXTENSIONS:
        try:
            mod = importlib.import_module(f"mmate_fast._cy.{name}")
            COMPILED[name] = True
            return mod
        except ImportError:
            if REQUIRE_EXTENSIONS:
                raise
    COMPILED[name] = False
    return importlib.import_module(f"mmate_fast._py.{name}")
