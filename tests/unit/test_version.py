"""One version, defined once (mmate_fast._version): the package, the AMQP client properties, the
tracer and the distribution metadata all read it."""
from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import mmate_fast
from mmate_fast._version import __version__
from mmate_fast.amqp import connection
from mmate_fast.amqp.url import parse_url

REPO = Path(__file__).resolve().parents[2]


def test_package_and_client_properties_use_the_one_version() -> None:
    assert mmate_fast.__version__ == __version__
    assert connection._client_properties(parse_url("amqp://localhost/"))["version"] == __version__


def test_pyproject_reads_the_version_from_the_module() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "mmate_fast._version.__version__"}


def test_no_other_module_spells_out_the_version() -> None:
    """No other module of the package holds the version string as a literal."""
    found = []
    for path in (REPO / "mmate_fast").rglob("*.py"):
        if path.name == "_version.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value == __version__:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not found, found
