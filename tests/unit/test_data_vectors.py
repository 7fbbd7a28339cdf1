"""The mmate-go vectors the wire tests read (tests/vectors.py): in the repository, complete and byte
for byte as captured (each body's length and SHA-256 as its sidecar recorded them), so a clone runs
the wire tests and an editor or a line-ending conversion cannot silently change a vector."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests import vectors
from tests.vectors import IN_REPO, VECTORS

INDEX = json.loads((VECTORS / "index.json").read_text())


def test_a_plain_clone_reads_the_copy_in_the_repository(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MMATE_VECTORS", raising=False)
    assert vectors.find() == IN_REPO
    assert (IN_REPO / "README.md").is_file()


def test_mmate_vectors_overrides_and_a_wrong_override_is_an_error(tmp_path: Path) -> None:
    assert vectors.find(str(tmp_path)) == tmp_path
    with pytest.raises(FileNotFoundError, match="MMATE_VECTORS"):
        vectors.find(str(tmp_path / "missing"))


def test_every_indexed_vector_is_present() -> None:
    names = [v["vector"] for v in INDEX["vectors"]]
    assert len(names) == 34
    for name in names:
        assert (VECTORS / f"{name}.body.json").is_file(), name
        assert (VECTORS / f"{name}.amqp.json").is_file(), name


@pytest.mark.parametrize("name", [v["vector"] for v in INDEX["vectors"]], ids=lambda n: n[:2])
def test_body_is_byte_identical_to_the_capture(name: str) -> None:
    sidecar = json.loads((VECTORS / f"{name}.amqp.json").read_text())
    body = (VECTORS / sidecar["body_file"]).read_bytes()
    assert len(body) == sidecar["body_length"]
    assert hashlib.sha256(body).hexdigest() == sidecar["body_sha256"]
