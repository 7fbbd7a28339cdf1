"""The package root: every name in ``__all__`` resolves, and the fleet is imported only when used."""
from __future__ import annotations

import subprocess
import sys

import mmate_fast


def test_every_public_name_resolves() -> None:
    missing = [name for name in mmate_fast.__all__ if not hasattr(mmate_fast, name)]
    assert missing == []


def test_unknown_attribute_is_an_attribute_error() -> None:
    try:
        mmate_fast.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("no AttributeError")


def test_the_fleet_is_imported_on_first_use_only() -> None:
    code = ("import sys, mmate_fast; assert 'mmate_fast.fleet' not in sys.modules; "
            "from mmate_fast import run_fleet, FleetOptions; import mmate_fast.fleet as f; "
            "assert run_fleet is f.run_fleet and FleetOptions is f.FleetOptions")
    subprocess.run([sys.executable, "-c", code], check=True)
