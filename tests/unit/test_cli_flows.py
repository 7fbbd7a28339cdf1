"""``mmate flows list|show`` on a SQLite store file written by the test: tables for people, --json for
scripts, the store URL from --store / $MMATE_FLOW_STORE, and the exit codes 0 / 1 / 2."""
from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from mmate_fast.cli import main
from mmate_fast.cli.flows import DEFAULT_STORE, format_duration, format_ns, store_url
from mmate_fast.stageflow.store import FlowRecord, open_store

T0 = 1_796_000_000_000_000_000  # 2026-11-30T00:53:20Z


def _state(iid: str, status: str, results: list[dict[str, object]], **extra: object) -> str:
    return json.dumps({"workflowId": "order-processing", "instanceId": iid, "status": status, **extra,
                       "stageResults": results,
                       "globalData": {"validate.validated": True, "charge.chargeId": "ch_42"},
                       "startTime": "2026-11-30T00:53:20Z", "lastModified": "2026-11-30T00:53:23Z",
                       "version": len(results) + 1})


VALIDATE = {"stageId": "validate", "status": "completed", "startTime": "2026-11-30T00:53:20.1Z",
            "endTime": "2026-11-30T00:53:20.100028523Z", "duration": 28523}
CHARGE = {"stageId": "charge", "status": "completed", "startTime": "2026-11-30T00:53:20.2Z", "duration": 12_345_678}
NOTIFY = {"stageId": "notify", "status": "failed", "error": "smtp: 421 try later", "startTime": "2026-11-30T00:53:21Z",
          "duration": 2_500_000_000}
RECORDS = [
    FlowRecord("ord-1", "order-processing", "completed", 4, None, None, T0, T0 + 2 * 10**9,
               _state("ord-1", "completed", [VALIDATE, CHARGE], endTime="2026-11-30T00:53:22Z"), "worker-a/101"),
    FlowRecord("ord-2", "order-processing", "failed", 3, "charge", "card declined", T0, T0 + 3 * 10**9,
               _state("ord-2", "failed", [VALIDATE, NOTIFY], currentStage="charge", errorMessage="card declined",
                      endTime="2026-11-30T00:53:23Z"), "worker-b/202"),
    FlowRecord("ship-1", "shipping", "running", 1, "pack", None, T0, T0 + 4 * 10**9 + 5_000_000,
               _state("ship-1", "running", []), ""),
    FlowRecord("bad-1", "shipping", "failed", 2, None, "x", T0, T0 + 1, "{not json", ""),
]


@pytest.fixture
def store_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A SQLite store with RECORDS, named by $MMATE_FLOW_STORE; the working folder is tmp_path."""
    url = f"sqlite:///{tmp_path / 'flows.db'}"

    async def fill() -> None:
        store = open_store(url)
        for rec in RECORDS:
            await store.save(rec)
        await store.close()

    asyncio.run(fill())
    monkeypatch.setenv("MMATE_FLOW_STORE", url)
    monkeypatch.chdir(tmp_path)
    return url


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["flows", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _ids(out: str) -> list[str]:
    return [word for line in out.splitlines() for word in line.split()
            if word in {r.instance_id for r in RECORDS}]


# ---------------------------------------------------------------------------- list
def test_list_shows_a_table_newest_first(store_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "list")
    assert code == 0 and err == ""
    assert _ids(out) == ["ship-1", "ord-2", "ord-1", "bad-1"]
    for header in ("INSTANCE", "WORKFLOW", "STATUS", "STAGE", "UPDATED", "ERROR"):
        assert header in out
    assert "card declined" in out and "2026-11-30T00:53:24.005Z" in out
    assert f"4 flow(s) from {store_file}" in out


def test_list_filters_and_pages(store_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _ids(_run(capsys, "list", "--status", "failed")[1]) == ["ord-2", "bad-1"]
    assert _ids(_run(capsys, "list", "--workflow", "shipping")[1]) == ["ship-1", "bad-1"]
    assert _ids(_run(capsys, "list", "--workflow", "shipping", "--status", "failed")[1]) == ["bad-1"]
    code, out, _ = _run(capsys, "list", "--limit", "2", "--offset", "1")
    assert code == 0 and _ids(out) == ["ord-2", "ord-1"] and "more with --offset" in out


def test_list_json_is_one_object_for_scripts(store_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "list", "--json", "--status", "failed", "--workflow", "order-processing")
    assert code == 0
    body = json.loads(out)
    assert body["store"] == store_file
    assert body["flows"] == [{
        "instance_id": "ord-2", "workflow_id": "order-processing", "status": "failed", "version": 3,
        "current_stage": "charge", "error": "card declined", "started_ns": T0, "updated_ns": T0 + 3 * 10**9,
        "started": "2026-11-30T00:53:20.000Z", "updated": "2026-11-30T00:53:23.000Z", "worker": "worker-b/202"}]


def test_list_of_nothing_says_so(store_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "list", "--status", "compensated")
    assert code == 0 and out == f"no flows with status=compensated in {store_file}\n"
    code, out, _ = _run(capsys, "list", "--json", "--status", "compensated")
    assert code == 0 and json.loads(out)["flows"] == []


def test_list_without_rich_prints_aligned_text(store_file: str, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rich.console", None)  # import fails as if rich were not installed
    code, out, _ = _run(capsys, "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["INSTANCE", "WORKFLOW", "STATUS", "STAGE", "VER", "UPDATED", "ERROR"]
    assert lines[1].split()[:5] == ["ship-1", "shipping", "running", "pack", "1"]
    assert lines[2].index("order-processing") == lines[0].index("WORKFLOW")  # columns aligned
    assert "┃" not in out


# ---------------------------------------------------------------------------- show
def test_show_prints_the_record_and_the_decoded_state(store_file: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "show", "ord-2")
    assert code == 0 and err == ""
    for text in ("instance: ord-2", "workflow: order-processing", "status:   failed", "version:  3",
                 "stage:    charge", "error:    card declined", "worker:   worker-b/202",
                 "ended:    2026-11-30T00:53:23Z", "stage results", '"charge.chargeId": "ch_42"'):
        assert text in out, text
    rows = {line.split()[0]: line for line in out.splitlines() if line.split() and line.split()[0] in
            ("validate", "notify")}
    assert "completed" in rows["validate"] and "29µs" in rows["validate"]
    assert "failed" in rows["notify"] and "2.50s" in rows["notify"] and "smtp: 421 try later" in rows["notify"]


def test_show_json_has_the_record_and_the_state(store_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "show", "ord-1", "--json")
    body = json.loads(out)
    assert code == 0 and body["record"]["status"] == "completed" and body["record"]["worker"] == "worker-a/101"
    assert body["state"] == json.loads(RECORDS[0].state_json)
    assert "state_error" not in body


def test_show_of_a_state_that_is_not_json_still_shows_the_record(
        store_file: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "show", "bad-1")
    assert code == 0 and "instance: bad-1" in out and "state:    cannot be shown: the stored state is not JSON" in out
    code, out, _ = _run(capsys, "show", "bad-1", "--json")
    body = json.loads(out)
    assert code == 0 and body["state"] is None and "not JSON" in body["state_error"]


def test_show_of_an_unknown_instance_exits_1_with_one_line(store_file: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "show", "nope")
    assert code == 1 and out == ""
    assert err == f"mmate flows: error: no flow instance 'nope' in {store_file}\n"


# ---------------------------------------------------------------------------- the store URL, errors
def test_store_url_comes_from_the_option_then_the_environment_then_the_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MMATE_FLOW_STORE", raising=False)
    assert store_url(None) == DEFAULT_STORE == "sqlite:///mmate-flows.db"
    monkeypatch.setenv("MMATE_FLOW_STORE", "memory://x")
    assert store_url(None) == "memory://x"
    assert store_url("sqlite:///given.db") == "sqlite:///given.db"


def test_store_option_before_or_after_the_command(store_file: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMATE_FLOW_STORE", "sqlite:///elsewhere.db")
    assert _run(capsys, "--store", store_file, "list")[0] == 0
    assert _run(capsys, "list", "--store", store_file)[0] == 0
    assert _run(capsys, "--store", "sqlite:///nope.db", "show", "ord-1", "--store", store_file)[0] == 0


def test_a_missing_sqlite_file_exits_1_and_is_not_created(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MMATE_FLOW_STORE", raising=False)
    code, out, err = _run(capsys, "list")
    assert code == 1 and out == ""
    assert err == ("mmate flows: error: no flow store at 'mmate-flows.db' (sqlite:///mmate-flows.db): give "
                   "--store URL or set $MMATE_FLOW_STORE\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv", [["list", "--store", "redis://h/0"], ["list", "--limit", "0"],
                                  ["list", "--limit", "x"], ["list", "--offset", "-1"], ["show"], [],
                                  ["list", "--bogus"]])
def test_bad_use_exits_2(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flows", *argv]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_an_unreachable_postgres_exits_1_without_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "list", "--store", "postgresql://flows:s3cret@127.0.0.1:1/db?timeout=5")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "cannot open the PostgreSQL flow store" in err and "s3cret" not in err and "flows:***@" in err


def test_times_and_durations_for_people() -> None:
    assert format_ns(0) == "-" and format_ns(None) == "-"
    assert format_ns(T0 + 123_456_789) == "2026-11-30T00:53:20.123Z"
    assert [format_duration(n) for n in (0, 999, 28_523, 12_345_678, 2_500_000_000, None, "x")] == \
        ["0ns", "999ns", "29µs", "12.3ms", "2.50s", "-", "x"]
