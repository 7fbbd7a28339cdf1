"""Imports point down the layer table of ARCHITECTURE.md, never up.

Every module of ``mmate_fast`` is parsed (no import is executed) and each of its imports — top level,
inside functions and under ``TYPE_CHECKING`` alike — is checked against the table below: a module may
import its own layer and the layers beneath it. The package root re-exports the front door for users:
library code never imports it (only the front door may, e.g. the command line for ``__version__``:
nothing of the front door is imported by the root's own imports, so no cycle). On top of the order,
the rules of the house: the messaging core and the patterns reach the broker only through the
transport interface (not the AMQP client or the transports themselves).
"""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = "mmate_fast"
ROOT = Path(__file__).resolve().parents[2] / PACKAGE

#: ARCHITECTURE.md's table, bottom-up: (layer, top-level modules/packages of mmate_fast in it)
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("errors and version", frozenset({"errors", "_version", "_checks", "_backoff"})),
    ("compiled codecs and twins", frozenset({"_ext", "_cy", "_py"})),
    ("transport interface", frozenset({"_transport"})),
    ("AMQP client", frozenset({"amqp"})),
    ("transports", frozenset({"transports"})),
    ("contracts", frozenset({"contracts"})),
    ("messaging core", frozenset({"messaging"})),
    # shutdown: graceful shutdown of any closable (README's Layout counts it among the patterns)
    ("patterns", frozenset({"bridge", "interceptors", "reliability", "shutdown", "stageflow", "discovery",
                            "observability"})),
    ("adapters", frozenset({"compat"})),
    # the Client, the command line (demo: moving into cli/), the worker fleet, the pytest plugin
    # (_client_streams: the Client's RabbitMQ Streams side, a private part of client.py)
    ("front door", frozenset({"client", "_client_streams", "cli", "demo", "fleet", "testing"})),
)
RANK = {top: rank for rank, (_, tops) in enumerate(LAYERS) for top in tops}
NAME = {top: name for name, tops in LAYERS for top in tops}
#: the package root (``mmate_fast/__init__.py``): above everything, imported by nothing of the library
TOP = len(LAYERS)
#: layers that reach the broker only through the transport interface
_THROUGH_INTERFACE = {"messaging", "bridge", "interceptors", "reliability", "stageflow", "discovery",
                      "observability"}
_BROKER_SIDE = {"amqp", "transports"}
FRONT_DOOR = RANK["client"]


def module_name(path: Path, root: Path = ROOT) -> str:
    """``mmate_fast/amqp/channel.py`` -> ``mmate_fast.amqp.channel`` (a package is its ``__init__``)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str, root: Path) -> bool:
    rel = Path(*name.split(".")[1:]) if "." in name else Path()
    base = root / rel
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file() or \
        base.with_suffix(".pyi").is_file()


def imports_of(source: str, module: str, is_package: bool,
               root: Path = ROOT) -> Iterator[tuple[int, str]]:
    """``(line, imported module)`` for every import of ``mmate_fast`` in ``source``; ``from pkg
    import name`` counts as ``pkg.name`` when that is a module, else as ``pkg``."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE:
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != PACKAGE:
                continue
            for alias in node.names:
                full = f"{base}.{alias.name}"
                yield node.lineno, full if _is_module(full, root) else base


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def violations(root: Path = ROOT) -> Iterator[str]:
    """One line per import that breaks the layering (or per module missing from the table)."""
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        top = _top(module)
        if top is not None and top not in RANK:
            yield f"{path.relative_to(root.parent)}: {module} is in no layer: add it to LAYERS (and to " \
                  "ARCHITECTURE.md's table)"
            continue
        rank = TOP if top is None else RANK[top]
        seen: set[tuple[int, str]] = set()
        for line, imported in imports_of(path.read_text(), module, path.name == "__init__.py", root):
            if (line, imported) in seen:
                continue
            seen.add((line, imported))
            where = f"{path.relative_to(root.parent)}:{line}"
            target = _top(imported)
            if target is None:
                if rank < FRONT_DOOR:
                    yield f"{where} imports the package root {imported!r} (library code never does: " \
                          "import the module that defines the name)"
                continue
            if target not in RANK:
                yield f"{where} imports {imported}, which is in no layer"
            elif RANK[target] > rank:
                yield f"{where} imports {imported} ({NAME[target]}) from below it ({NAME[top or '']})"
            elif top in _THROUGH_INTERFACE and target in _BROKER_SIDE:
                yield f"{where} imports {imported}: {NAME[top]} code reaches the broker only through " \
                      "the transport interface (mmate_fast._transport)"


def test_imports_point_down_the_layer_table() -> None:
    found = list(violations())
    assert not found, "upward imports (see ARCHITECTURE.md, Layers):\n" + "\n".join(found)


def test_every_layer_in_the_table_exists_or_is_planned() -> None:
    """The table names real modules (a typo would silently exempt a layer)."""
    present = {p.name.removesuffix(".py") for p in ROOT.iterdir() if not p.name.startswith("__")}
    planned = {"stageflow", "discovery", "observability", "compat", "fleet", "testing", "cli", "demo"}
    missing = set(RANK) - present - planned
    assert not missing, f"LAYERS names modules that do not exist: {sorted(missing)}"


@pytest.mark.parametrize(("module", "source", "expected"), [
    ("amqp/channel.py", "from mmate_fast.transports.base import Channel\n", "transports"),
    ("transports/memory/_channel.py", "from mmate_fast.contracts import Event\n", "contracts"),
    ("messaging/subscriber.py", "def f():\n    from mmate_fast.reliability import dlq\n", "patterns"),
    ("messaging/subscriber.py", "from mmate_fast.amqp.robust import RecoveryPolicy\n", "interface"),
    ("interceptors/tracing.py", "from mmate_fast import __version__\n", "package root"),
    ("bridge.py", "import mmate_fast.client\n", "front door"),
    ("errors.py", "from .messaging import topology\n", "messaging"),
])
def test_the_check_finds_an_upward_import(tmp_path: Path, module: str, source: str, expected: str) -> None:
    """The checker itself: a planted upward import (absolute, lazy or relative) is reported."""
    root = tmp_path / PACKAGE
    for pkg in ("amqp", "transports/memory", "contracts", "messaging", "reliability", "interceptors"):
        (root / pkg).mkdir(parents=True, exist_ok=True)
        (root / pkg / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    for mod in ("client.py", "transports/base.py", "messaging/topology.py", "amqp/robust.py"):
        (root / mod).write_text("")
    (root / module).write_text(source)
    found = list(violations(root))
    assert len(found) == 1 and expected in found[0], found


def test_downward_and_sideways_imports_pass(tmp_path: Path) -> None:
    root = tmp_path / PACKAGE
    (root / "amqp").mkdir(parents=True)
    (root / "__init__.py").write_text("from mmate_fast.client import Client\n")
    (root / "errors.py").write_text("")
    (root / "client.py").write_text("from mmate_fast.bridge import Bridge\nfrom mmate_fast import errors\n")
    (root / "bridge.py").write_text("from mmate_fast.reliability import retry\nfrom mmate_fast._transport "
                                    "import Channel\n")
    (root / "amqp" / "__init__.py").write_text("from mmate_fast._transport import Channel\n"
                                               "from . import channel\n")
    (root / "amqp" / "channel.py").write_text("")
    assert list(violations(root)) == []


def test_the_transport_interface_is_still_where_users_import_it() -> None:
    """Moved below amqp/ and transports/, re-exported unchanged from mmate_fast.transports(.base)."""
    from mmate_fast import _transport, transports
    from mmate_fast.transports import base

    for name in _transport.__all__:
        assert getattr(base, name) is getattr(_transport, name)
    for name in ("Channel", "Connection", "QueueDeclareOk"):
        assert getattr(transports, name) is getattr(_transport, name)
