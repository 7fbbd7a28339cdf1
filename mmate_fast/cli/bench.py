"""``mmate bench WORKLOAD...``: run the benchmark workloads of ``benchmarks/run.py`` (ours vs aio-pika vs
a raw-socket client, against the local RabbitMQ) with a progress bar, and keep the results.

``benchmarks/`` belongs to the source checkout, not to the package: it is looked up beside the
``mmate_fast`` folder (``--benchmarks DIR`` points elsewhere); an installed wheel has none, and the
command says so. Each workload is one ``run.py`` process; its last stdout line is its JSON result.
All of them go into ``DIR/bench-<UTC time>.json`` and a plot beside it, ``.png`` (matplotlib, the
``plot`` extra; ``_bench_plot``). Exit codes: 0 every workload ran, 1 one failed (its error is in
the JSON and on stderr) or nothing could run, 2 bad use.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import sys
import time
from pathlib import Path
from typing import Any

from mmate_fast.cli._common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    positive_float,
    positive_int,
    report,
    run_async,
)

NAME = "bench"
WORKLOADS = ("publish", "publish-confirm", "publish-confirm-each", "consume", "e2e", "rpc")
#: where the checkout's benchmarks are, seen from this file (mmate_fast/cli/bench.py)
CHECKOUT_BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def add_parser(sub: Any) -> None:
    """Add ``bench`` to the ``mmate`` subparsers."""
    p = sub.add_parser(
        NAME, help="run benchmark workloads (ours vs aio-pika vs raw) and plot them",
        description="Run workloads of benchmarks/run.py (a source checkout's; not part of an installed "
                    "wheel) against the local RabbitMQ: mmate_fast, aio-pika and a raw-socket client, each "
                    "in a fresh process. Writes DIR/bench-<time>.json (every run.py result: rates, the "
                    "ratios vs_aio_pika and vs_raw, latency percentiles) and a PNG plot beside it.")
    p.add_argument("workloads", nargs="+", metavar="WORKLOAD", choices=WORKLOADS,
                   help=f"one or more of: {', '.join(WORKLOADS)}")
    p.add_argument("--repeat", "-r", type=positive_int, default=1, metavar="N",
                   help="repetitions per client (medians and per-repetition ratios; default 1)")
    p.add_argument("--out", "-o", type=Path, default=Path("bench-results"), metavar="DIR",
                   help="folder for the JSON and the PNG (default ./bench-results)")
    p.add_argument("--messages", "-n", type=positive_int, default=None, metavar="N",
                   help="messages per client run (default: run.py's, 50000 for most workloads)")
    p.add_argument("--level", choices=("transport", "mmate"), default=None,
                   help="run.py --level (mmate: typed events through the Client; publish, consume, e2e)")
    p.add_argument("--only", default=None, metavar="CLIENTS",
                   help="run.py --only, e.g. mmate_fast,aio_pika")
    p.add_argument("--timeout", type=positive_float, default=300.0, metavar="SECONDS",
                   help="seconds per client run (default 300)")
    p.add_argument("--benchmarks", type=Path, default=None, metavar="DIR",
                   help="the benchmarks folder (default: the one of this source checkout)")
    p.add_argument("--no-plot", action="store_true", help="write the JSON only (no matplotlib needed)")
    p.add_argument("--json", action="store_true", help="print the written JSON document on stdout")
    p.set_defaults(run=run)


def find_runner(folder: Path | None) -> Path:
    """``run.py`` of ``folder`` (default: the checkout's); FileNotFoundError saying what to do."""
    runner = (folder or CHECKOUT_BENCHMARKS) / "run.py"
    if runner.is_file():
        return runner
    if folder is not None:
        raise FileNotFoundError(f"{runner} does not exist: --benchmarks takes the benchmarks folder of a "
                                "mmate_fast source checkout")
    raise FileNotFoundError(f"no benchmarks here ({runner} does not exist): the benchmark workloads are part "
                            "of the mmate_fast source checkout, not of the installed package; run mmate "
                            "bench from a checkout (git clone, then pip install -e '.[bench,plot]'), or "
                            "pass --benchmarks DIR")


def run_argv(runner: Path, workload: str, args: argparse.Namespace) -> list[str]:
    """The ``run.py`` command line of one workload."""
    argv = [sys.executable, str(runner), workload, "--repeat", str(args.repeat),
            "--timeout", f"{args.timeout:g}"]
    if args.messages is not None:
        argv += ["--messages", str(args.messages)]
    if args.level is not None:
        argv += ["--level", args.level]
    if args.only is not None:
        argv += ["--only", args.only]
    return argv


def run(args: argparse.Namespace) -> int:
    """Run a parsed ``mmate bench``; returns the exit code."""
    try:
        runner = find_runner(args.benchmarks)
    except FileNotFoundError as exc:
        report(NAME, exc)
        return EXIT_FAILED
    if not args.no_plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            report(NAME, "the plot needs matplotlib: pip install 'mmate-fast[plot]' (or pass --no-plot)")
            return EXIT_FAILED
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        report(NAME, f"cannot create --out {args.out}: {exc.strerror or exc}")
        return EXIT_USAGE
    try:
        runs = run_async(_run_all(runner, args))
    except KeyboardInterrupt:
        print(f"\n{PROG} {NAME}: interrupted (the workload that ran was stopped)", file=sys.stderr)
        return 130
    return _write(runs, args)


async def _run_all(runner: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    runs: list[dict[str, Any]] = []
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        task = progress.add_task("workloads", total=len(args.workloads))
        for workload in args.workloads:
            progress.update(task, description=f"{workload}: starting")

            def line(text: str, workload: str = workload) -> None:
                progress.update(task, description=f"{workload}: {text.strip()[:90]}")

            outcome = await run_workload(run_argv(runner, workload, args), runner.parent.parent, line)
            outcome["workload"] = workload
            runs.append(outcome)
            progress.console.print(summary_line(outcome), soft_wrap=True, markup=False, highlight=False)
            progress.advance(task)
        progress.update(task, description="done")
    return runs


async def run_workload(argv: list[str], cwd: Path, on_line: Any) -> dict[str, Any]:
    """Run one ``run.py`` (its stderr lines go to ``on_line``); ``{"argv", "exit_code", "result",
    "error"}`` with its last-line JSON as ``result`` (None when there is none)."""
    proc = await asyncio.create_subprocess_exec(*argv, cwd=cwd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, start_new_session=True)
    assert proc.stdout is not None and proc.stderr is not None
    tail: list[str] = []

    async def follow(stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            text = raw.decode("utf-8", "replace").rstrip()
            if text:
                tail[:] = [*tail[-4:], text]
                on_line(text)

    try:
        out, _ = await asyncio.gather(proc.stdout.read(), follow(proc.stderr))
        code = await proc.wait()
    except BaseException:  # interrupted: stop run.py and the client processes it started (its group)
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            await proc.wait()
        raise
    lines = out.decode("utf-8", "replace").strip().splitlines()
    result: dict[str, Any] | None = None
    if lines:
        with contextlib.suppress(ValueError):
            parsed = json.loads(lines[-1])
            result = parsed if isinstance(parsed, dict) else None
    error = None
    if code != 0 or result is None:
        why = (result or {}).get("errors") or (tail[-1] if tail else f"no output (exit {code})")
        error = f"run.py exit {code}: {why}"
    return {"argv": argv[1:], "exit_code": code, "result": result, "error": error}


def _fmt_rate(value: Any) -> str:
    return f"{value:,.0f}/s" if isinstance(value, int | float) else "-"


def _fmt_ratio(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, int | float) else "-"


def summary_line(outcome: dict[str, Any]) -> str:
    """One line per workload for people: rates and ratios (or the error)."""
    result = outcome.get("result") or {}
    head = f"{outcome['workload']}: "
    if outcome.get("error") and not result:
        return head + f"FAILED ({outcome['error']})"
    rates = result.get("rates") or {}
    if outcome["workload"] == "rpc":  # per concurrency
        parts = [f"{ck} ours {_fmt_rate((per or {}).get('mmate_fast'))} vs aio-pika "
                 f"{_fmt_ratio((result.get('vs_aio_pika') or {}).get(ck), '.2f')}x"
                 for ck, per in rates.items()]
        text = "; ".join(parts)
    else:
        text = (", ".join(f"{c} {_fmt_rate(r)}" for c, r in rates.items() if r is not None)
                + f"; vs aio-pika {_fmt_ratio(result.get('vs_aio_pika'), '.2f')}x, "
                  f"vs raw {_fmt_ratio(result.get('vs_raw'), '.3f')}")
    return head + text + (f"  [error: {outcome['error']}]" if outcome.get("error") else "")


def _document(runs: list[dict[str, Any]], args: argparse.Namespace, stamp: str) -> dict[str, Any]:
    import mmate_fast

    ratios = {o["workload"]: {"vs_aio_pika": (o.get("result") or {}).get("vs_aio_pika"),
                              "vs_raw": (o.get("result") or {}).get("vs_raw")} for o in runs}
    return {"created": stamp, "mmate_fast": mmate_fast.__version__, "compiled": dict(mmate_fast.COMPILED),
            "python": platform.python_version(), "machine": platform.machine(), "repeat": args.repeat,
            "messages": args.messages, "level": args.level, "ratios": ratios, "runs": runs}


def _write(runs: list[dict[str, Any]], args: argparse.Namespace) -> int:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    base = args.out / f"bench-{stamp}"
    doc = _document(runs, args, stamp)
    json_path, png_path = base.with_suffix(".json"), base.with_suffix(".png")
    doc["json_path"] = str(json_path)
    if not args.no_plot:
        from mmate_fast.cli._bench_plot import plot

        try:
            plot(runs, png_path, title=f"mmate bench {stamp} (repeat {args.repeat})")
        except (OSError, ValueError) as exc:
            report(NAME, f"the plot failed: {exc}")
        else:
            doc["png_path"] = str(png_path)
    json_path.write_text(json.dumps(doc, indent=2) + "\n")
    failed = [o for o in runs if o.get("error")]
    for o in failed:
        report(NAME, f"workload {o['workload']}: {o['error']}")
    if args.json:
        print(json.dumps(doc))
    else:
        print(f"wrote {json_path}" + (f" and {png_path}" if "png_path" in doc else ""))
    return EXIT_FAILED if failed or (not args.no_plot and "png_path" not in doc) else EXIT_OK


__all__ = ["WORKLOADS", "add_parser", "find_runner", "run", "run_argv", "run_workload", "summary_line"]
