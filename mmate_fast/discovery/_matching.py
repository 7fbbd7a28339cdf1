"""Go's matching rules for discovery queries (wire-protocol.md §9.3, mmate-go
``EndpointContract.Matches``): endpoint id patterns and version constraints.

Pattern: empty matches any id; otherwise an exact id, or with ``*`` an anchored match where ``*`` is
any run of characters and everything else is literal.

Version: empty matches any; an equal string matches; a constraint containing ``x`` is first tried as
Go's regex (each ``x`` = digits, anchored: ``1.x`` matches ``1.2``); then, as Go falls through to
it, a Masterminds semver v3 constraint (``^1.2``, ``~1.2.3``, ``>=1.2 <2``, ``1.2 - 1.4``, ``1.x``,
``a || b``; comma or space = and); a contract version that is not semver never matches a constraint.
Versions are parsed and compared by the ``semver`` package; the constraint operators (caret, tilde,
wildcards and partial versions, which Python packages read differently) follow Masterminds'
``constraints.go`` rule by rule.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from mmate_fast.errors import ConfigurationError

_semver: Any
try:
    import semver as _semver
except ImportError:  # pragma: no cover - depends on the environment
    _semver = None

_NUM = r"[0-9xX*]+"
_CV = (rf"v?({_NUM})(\.{_NUM})?(\.{_NUM})?"
       r"(-([0-9A-Za-z\-]+(?:\.[0-9A-Za-z\-]+)*))?"
       r"(\+([0-9A-Za-z\-]+(?:\.[0-9A-Za-z\-]+)*))?")
_OPS = r"!=|>=|=>|<=|=<|~>|>|<|=|~|\^|"
_ONE = re.compile(rf"^\s*({_OPS})\s*({_CV})\s*$")
_FIND = re.compile(rf"({_OPS})\s*({_CV})")
_VALID = re.compile(rf"^(\s*({_OPS})\s*({_CV})\s*)((?:\s+|,\s*)({_OPS})\s*({_CV})\s*)*$")
_RANGE = re.compile(rf"\s*({_CV})\s+-\s+({_CV})\s*")
_VERSION = re.compile(r"^v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?"
                      r"(-([0-9A-Za-z\-]+(?:\.[0-9A-Za-z\-]+)*))?"
                      r"(\+([0-9A-Za-z\-]+(?:\.[0-9A-Za-z\-]+)*))?$")


def pattern_matches(pattern: str, endpoint_id: str) -> bool:
    """Go's ``matchesPattern``: empty = any, exact id, or ``*`` wildcards (anchored)."""
    if not pattern or pattern == endpoint_id:
        return True
    if "*" not in pattern:
        return False
    return _pattern_regex(pattern).match(endpoint_id) is not None


@lru_cache(maxsize=256)
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$", re.DOTALL)


def version_matches(constraint: str, version: str) -> bool:
    """Go's ``matchesVersion`` (see the module docstring)."""
    if not constraint or constraint == version:
        return True
    if "x" in constraint:
        rx = "^" + constraint.replace("x", "[0-9]+").replace(".", "\\.") + "$"
        try:
            if re.match(rx, version):
                return True
        except re.error:
            pass
    check = _constraint(constraint)
    if check is None:
        return False
    v = parse_version(version)
    return v is not None and check(v)


def parse_version(text: str) -> Any:
    """Masterminds' lenient ``NewVersion``: ``v`` prefix and missing minor/patch allowed; None when
    ``text`` is not a semantic version."""
    m = _VERSION.match(text)
    if m is None:
        return None
    sv = _require_semver()
    return sv.Version(int(m[1]), int(m[2][1:]) if m[2] else 0, int(m[3][1:]) if m[3] else 0,
                      prerelease=m[5], build=m[7])


def _require_semver() -> Any:
    if _semver is None:  # pragma: no cover - depends on the environment
        raise ConfigurationError("version constraints need the semver package: "
                                 "pip install 'mmate-fast[discovery]'")
    return _semver


Check = Callable[[Any], bool]


@lru_cache(maxsize=256)
def _constraint(text: str) -> Check | None:
    """Masterminds ``NewConstraint``: OR groups of AND-ed constraints; None when not a constraint."""
    text = _RANGE.sub(lambda m: f">= {m[1]}, <= {m[9]}", text)
    groups: list[list[Check]] = []
    for part in text.split("||"):
        if not _VALID.match(part):
            return None
        found = [m.group(0) for m in _FIND.finditer(part)] or [part]
        checks = []
        for one in found:
            c = _parse_one(one)
            if c is None:
                return None
            checks.append(c)
        groups.append(checks)
    return lambda v: any(all(c(v) for c in g) for g in groups)


def _is_x(s: str) -> bool:
    return s in ("x", "X", "*")


def _parse_one(text: str) -> Check | None:
    sv = _require_semver()
    m = _ONE.match(text)
    if m is None:
        return None
    op, major, minor, patch, pre = m[1], m[3], (m[4] or "")[1:], (m[5] or "")[1:], m[7]
    minor_dirty = patch_dirty = dirty = False
    if _is_x(major):
        con_t = (0, 0, 0)
        dirty = True
    elif _is_x(minor) or not m[4]:
        con_t = (int(major), 0, 0)
        minor_dirty = dirty = True
    elif _is_x(patch) or not m[5]:
        con_t = (int(major), int(minor), 0)
        patch_dirty = dirty = True
    else:
        con_t = (int(major), int(minor), int(patch))
    try:
        con = sv.Version(*con_t, prerelease=pre)
    except ValueError:
        return None
    c = _Con(con, op, dirty, minor_dirty, patch_dirty)
    return c.check


class _Con:
    """One constraint, checked as Masterminds' constraint functions do."""

    __slots__ = ("con", "dirty", "minor_dirty", "op", "patch_dirty")

    def __init__(self, con: Any, op: str, dirty: bool, minor_dirty: bool, patch_dirty: bool) -> None:
        self.con, self.op = con, op
        self.dirty, self.minor_dirty, self.patch_dirty = dirty, minor_dirty, patch_dirty

    def check(self, v: Any) -> bool:
        vv, cc = v, self.con
        if vv.prerelease and not cc.prerelease:
            return False  # pre-releases only match constraints that ask for them
        op = self.op
        cmp = vv.compare(cc)
        vmaj, vmin, vpat = vv.major, vv.minor, vv.patch
        cmaj, cmin, cpat = cc.major, cc.minor, cc.patch
        if op in ("", "="):
            return self._tilde(cmp, vmaj, vmin, cmaj, cmin, cpat) if self.dirty else cmp == 0
        if op == "!=":
            if self.dirty:
                if cmaj != vmaj:
                    return True
                if cmin != vmin and not self.minor_dirty:
                    return True
                if self.minor_dirty:
                    return False
                return cpat != vpat and not self.patch_dirty
            return cmp != 0
        if op == ">":
            if not self.dirty:
                return cmp > 0
            if vmaj != cmaj:
                return vmaj > cmaj
            if self.minor_dirty:
                return False
            if self.patch_dirty:
                return vmin > cmin
            return cmp > 0
        if op == "<":
            return cmp < 0
        if op in (">=", "=>"):
            return cmp >= 0
        if op in ("<=", "=<"):
            if not self.dirty:
                return cmp <= 0
            if vmaj > cmaj:
                return False
            return not (vmaj == cmaj and vmin > cmin and not self.minor_dirty)
        if op in ("~", "~>"):
            return self._tilde(cmp, vmaj, vmin, cmaj, cmin, cpat)
        # "^"
        if cmp < 0:
            return False
        if cmaj > 0 or self.minor_dirty:
            return vmaj == cmaj
        if vmaj > 0:
            return False
        if cmin > 0 or self.patch_dirty:
            return vmin == cmin
        if vmin > 0:
            return False
        return cpat == vpat

    def _tilde(self, cmp: int, vmaj: int, vmin: int, cmaj: int, cmin: int, cpat: int) -> bool:
        if cmp < 0:
            return False
        if cmaj == 0 and cmin == 0 and cpat == 0 and not self.minor_dirty and not self.patch_dirty:
            return True
        if vmaj != cmaj:
            return False
        return not (vmin != cmin and not self.minor_dirty)


def contract_matches(endpoint_id: str, version: str, pattern: str, constraint: str) -> bool:
    """Go's ``EndpointContract.Matches(pattern, version)``."""
    return pattern_matches(pattern, endpoint_id) and version_matches(constraint, version)


__all__ = ["contract_matches", "parse_version", "pattern_matches", "version_matches"]
