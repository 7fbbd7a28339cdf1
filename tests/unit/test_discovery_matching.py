"""Go's matching rules for discovery (wire-protocol.md §9.3; mmate-go EndpointContract.Matches and the
Masterminds semver v3 constraints it falls through to)."""
from __future__ import annotations

import pytest

from mmate_fast.discovery import EndpointContract, pattern_matches, version_matches


@pytest.mark.parametrize(("pattern", "endpoint", "expected"), [
    ("", "orders.create", True),
    ("orders.create", "orders.create", True),
    ("orders.create", "orders.Create", False),
    ("orders.*", "orders.create", True),
    ("orders.*", "orders.", True),
    ("orders.*", "xorders.create", False),
    ("*.GetOrderQuery", "svc.GetOrderQuery", True),
    ("*Order*", "svc.GetOrderQuery", True),
    ("orders.c", "orders.create", False),  # no wildcard: exact only
    ("a.b", "aXb", False),  # dots are literal
    ("a(.*", "a(.x", True),  # regex characters are literal
    ("a(.*", "ab.x", False),
])
def test_pattern(pattern: str, endpoint: str, expected: bool) -> None:
    assert pattern_matches(pattern, endpoint) is expected


# Masterminds README / constraints.go comments, and Go's "x" regex before them
@pytest.mark.parametrize(("constraint", "version", "expected"), [
    ("", "anything", True),
    ("1.0.0", "1.0.0", True),
    ("weird", "weird", True),  # string equality first
    ("1.x", "1.2", True),  # Go's regex
    ("1.x", "1.2.3", True),  # the regex fails, Masterminds' 1.x (>=1.0.0 <2.0.0) matches
    ("1.x", "2.0.0", False),
    ("1.2.x", "1.2.9", True),
    ("1.2.x", "1.3.0", False),
    ("^1.2.3", "1.2.3", True), ("^1.2.3", "1.9.9", True), ("^1.2.3", "2.0.0", False), ("^1.2.3", "1.2.2", False),
    ("^1.2", "1.2.0", True), ("^1.2", "1.99.0", True), ("^1.2", "1.1.9", False),
    ("^1", "1.5.0", True), ("^1", "2.0.0", False),
    ("^0.2.3", "0.2.9", True), ("^0.2.3", "0.3.0", False),
    ("^0.2", "0.2.0", True), ("^0.2", "0.3.0", False),
    ("^0.0.3", "0.0.3", True), ("^0.0.3", "0.0.4", False),
    ("^0.0", "0.0.9", True), ("^0.0", "0.1.0", False),
    ("^0", "0.9.9", True), ("^0", "1.0.0", False),
    ("~1.2.3", "1.2.9", True), ("~1.2.3", "1.3.0", False), ("~1.2.3", "1.2.2", False),
    ("~1.2", "1.2.5", True), ("~1.2", "1.3.0", False),
    ("~1", "1.9.0", True), ("~1", "2.0.0", False),
    ("~>1.2", "1.2.5", True),
    (">=1.2 <2", "1.5.0", True), (">=1.2, <2", "2.0.0", False), (">= 1.2, < 2", "1.1.0", False),
    ("1.2 - 1.4.5", "1.4.5", True), ("1.2 - 1.4.5", "1.4.6", False), ("1.2 - 1.4.5", "1.1.9", False),
    ("^1.2 || ^3", "3.1.0", True), ("^1.2 || ^3", "2.1.0", False),
    ("!=1.2.3", "1.2.4", True), ("!=1.2.3", "1.2.3", False),
    (">1.2", "1.2.9", False), (">1.2", "1.3.0", True),  # 1.2 is the range 1.2.x
    ("<=1.2", "1.2.9", True), ("<=1.2", "1.3.0", False),
    ("1.2", "1.2.7", True),  # a partial version is a range
    ("1.2.3", "1.2.4", False),
    ("^1.0", "1.0.0-beta", False),  # pre-releases only for constraints that ask for them
    ("^1.0.0-beta", "1.0.0-beta.2", True),
    ("^1.2", "v1.3", True),  # lenient versions: v prefix, missing patch
    ("*", "5.0.0", True),
    ("^1.2", "banana", False),  # a contract version that is not semver never matches a constraint
    ("junk", "1.0.0", False),  # not a constraint: no match
])
def test_version(constraint: str, version: str, expected: bool) -> None:
    assert version_matches(constraint, version) is expected


def test_contract_matches_both() -> None:
    c = EndpointContract(endpoint_id="orders.GetOrderQuery", version="1.4.0")
    assert c.matches("orders.*", "^1.2")
    assert not c.matches("orders.*", "^2")
    assert not c.matches("billing.*", "^1.2")
    assert c.matches()
