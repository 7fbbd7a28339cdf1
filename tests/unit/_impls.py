"""Both implementations (compiled + twin) of a codec module, for parametrized tests."""
from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

NO_EXT = os.environ.get("MMATE_NO_EXTENSIONS") == "1"


def impl_params(name: str) -> list[object]:
    """pytest params: the twin always; the compiled one must import unless MMATE_NO_EXTENSIONS=1."""
    params: list[object] = [pytest.param(importlib.import_module(f"mmate_fast._py.{name}"), id="py")]
    if NO_EXT:
        params.append(pytest.param(None, id="cy", marks=pytest.mark.skip("MMATE_NO_EXTENSIONS=1")))
    else:
        mod: ModuleType = importlib.import_module(f"mmate_fast._cy.{name}")  # ImportError fails the run
        params.append(pytest.param(mod, id="cy"))
    return params
