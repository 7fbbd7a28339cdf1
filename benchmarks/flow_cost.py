"""The stageflow workload on a throw-away RabbitMQ node of its own: broker CPU per flow that is ours.

    python benchmarks/flow_cost.py [--flows N] [--repeat R] [--only raw,mmate_fast,aio_pika]
                                   [--prefetch P] [--inflight I]

Starts a node (tests/integration/broker_node.py, stopped at the end), points the flow clients at it
(``BENCH_AMQP_PORT``) and runs ``run.py stageflow``'s runner (_flow_runner.py) unchanged: same rows,
table and JSON. On the shared broker on 5672 the "broker µs/flow" column counts every other session's
traffic too; here it is the broker's CPU for our flows alone, the figure to judge a change to what
goes on the wire (or how it is acked and confirmed) by. Like rpc_cost.py the node runs with the
schedulers' busy-waiting off (``+sbwt none``; ``--busy-wait`` keeps the default), so the CPU counted
is work, not spinning. The rates still share the machine's 2 cores with everyone.
"""
from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    from _cost_node import cost_node
    from _flow_common import FLOW_PREFETCH, INFLIGHT
    from _flow_runner import ORDER
    from _flow_runner import main as flow_main

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flows", "-n", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--only", default="raw,mmate_fast,aio_pika")
    ap.add_argument("--prefetch", type=int, default=FLOW_PREFETCH)
    ap.add_argument("--inflight", type=int, default=INFLIGHT)
    ap.add_argument("--loop", default="uvloop", choices=["uvloop", "asyncio"])
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--busy-wait", action="store_true", help="keep the schedulers' default busy-waiting")
    ap.add_argument("--reductions", action="store_true",
                    help="print the node's Erlang reductions per flow by process kind after each row (a "
                         "sampler process on the node, every 200 ms: its own work counts as broker CPU)")
    ap.add_argument("--eprof", default=None, metavar="DIR",
                    help="profile the node's channel and queue processes with eprof for 2 s, 3 s into each "
                         "row, into DIR/eprof-ROW-N.txt (slows them a lot: counts only, no rates)")
    ap.add_argument("--eval", default=None, metavar="FILE",
                    help="rabbitmqctl eval the Erlang expression in FILE on the node 3 s into each row and "
                         "print its output (e.g. a call trace of what the broker does per flow)")
    ap.add_argument("--frames", action="store_true",
                    help="count the AMQP methods per flow through a proxy (_flow_frames.py; one row only; "
                         "the proxy's CPU is this process's, but take rates from a run without it)")
    a = ap.parse_args(argv)
    only = [c.strip().replace("-", "_") for c in a.only.split(",") if c.strip()]
    if any(c not in ORDER for c in only) or a.repeat < 1 or min(a.prefetch, a.inflight) < 1:
        ap.error(f"--only takes rows of {ORDER}; --repeat/--prefetch/--inflight >= 1")
    if a.frames and len(only) != 1:
        ap.error("--frames counts one row: give --only ROW")
    with cost_node("flowcost", "flow_cost", busy_wait=a.busy_wait) as node:
        _count_broker_io(node, a.reductions, a.eprof, a.eval)
        if not a.frames:
            return flow_main(a.flows, a.repeat, only, a.loop, a.timeout, a.prefetch, a.inflight)
        import os

        from _flow_common import DEFAULT_FLOWS
        from _flow_frames import FrameProxy

        proxy = FrameProxy(node.amqp_port)
        os.environ["BENCH_AMQP_PORT"] = str(proxy.start())
        try:
            rc = flow_main(a.flows, a.repeat, only, a.loop, a.timeout, a.prefetch, a.inflight)
        finally:
            proxy.stop()
        # the starter's one warm-up flow per repetition counts too
        proxy.report(((a.flows or DEFAULT_FLOWS) + 1) * a.repeat, only[0])
        return rc


def _beam_counts(pid: int) -> dict[str, int]:
    """The node's socket read/write syscalls and its threads' context switches so far."""
    import os

    out: dict[str, int] = {}
    with open(f"/proc/{pid}/io") as f:
        for line in f:
            k, v = line.split(":")
            if k in ("syscr", "syscw", "write_bytes"):
                out[k] = int(v)
    vol = inv = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches"):
                        inv += int(line.split()[1])
        except OSError:
            continue
    out["ctxsw_vol"] = vol
    out["ctxsw_invol"] = inv
    return out


#: rabbitmqctl eval: a sampler process on the node keeping, per process, its kind and first/last reductions
_SAMPLER = r"""
case whereis(fb_sampler) of undefined -> ok; Old -> exit(Old, kill) end,
Group = fun(P) ->
  case erlang:process_info(P, [registered_name, dictionary, initial_call]) of
    [{registered_name, N}, {dictionary, D}, {initial_call, IC}] ->
      case proplists:get_value('$initial_call', D) of
        {M, _, _} -> case N of [] -> M; _ -> N end;
        _ -> case N of [] -> IC; _ -> N end
      end;
    _ -> gone
  end
end,
Pid = spawn(fun() ->
  Loop = fun Loop(Acc) ->
    receive
      {get, From} -> From ! {fb, Acc}, Loop(Acc);
      reset -> Loop(#{})
    after 200 ->
      Acc2 = lists:foldl(fun(P, A) ->
        case erlang:process_info(P, reductions) of
          {reductions, R} ->
            case maps:find(P, A) of
              {ok, {G, R0, _}} -> maps:put(P, {G, R0, R}, A);
              error -> maps:put(P, {Group(P), R, R}, A)
            end;
          _ -> A
        end end, Acc, processes()),
      Loop(Acc2)
    end
  end,
  Loop(#{}) end),
register(fb_sampler, Pid), ok.
"""
_FETCH = r"""
fb_sampler ! {get, self()},
receive {fb, Acc} ->
  G = maps:fold(fun(_, {K, R0, R}, M) -> maps:update_with(K, fun(V) -> V + R - R0 end, R - R0, M) end,
                #{}, Acc),
  [io:format("~w ~w~n", [V, K]) || {K, V} <- lists:reverse(lists:keysort(2, maps:to_list(G))), V > 0],
  ok
after 5000 -> timeout end.
"""


#: rabbitmqctl eval: eprof on every channel and queue process for 2 s, the analysis into ~s (the file)
_EPROF = r"""
Kind = fun(P) -> case erlang:process_info(P, dictionary) of
  {dictionary, D} -> case proplists:get_value('$initial_call', D) of {M, _, _} -> M; _ -> none end;
  _ -> none end end,
Pids = [P || P <- processes(), lists:member(Kind(P), [rabbit_channel, rabbit_prequeue])],
eprof:start(), eprof:log("~s"), eprof:start_profiling(Pids), timer:sleep(2000),
eprof:stop_profiling(), eprof:analyze(total), eprof:stop(), ok.
"""


def _count_broker_io(node: object, reductions: bool = False, eprof: str | None = None,
                     eval_file: str | None = None) -> None:
    """Print, after each row's run, the node's read/write syscalls and context switches per flow
    (the whole run of the row: setup included, a few hundred per row). How often the broker wakes
    and reads is what a client's write pattern changes even when the AMQP methods per flow are the
    same."""
    import _flow_runner
    from _common import main_beam_pid

    pid = main_beam_pid(node.amqp_port)  # type: ignore[attr-defined]
    if not pid:
        return
    run_one = _flow_runner.run_one
    ctl = node.ctl  # type: ignore[attr-defined]
    if reductions:
        ctl("eval", _SAMPLER)

    def counted(client: str, n: int, *args: object, **kw: object) -> object:
        if reductions:
            ctl("eval", "fb_sampler ! reset, ok.")
        timer = None
        if eprof:
            import os
            import threading

            os.makedirs(eprof, exist_ok=True)
            k = len([f for f in os.listdir(eprof) if f.startswith(f"eprof-{client}-")])
            path = os.path.abspath(os.path.join(eprof, f"eprof-{client}-{k + 1}.txt"))
            timer = threading.Timer(3.0, ctl, ("eval", _EPROF.replace("~s", path)))
            timer.start()
        elif eval_file:
            import threading

            with open(eval_file) as f:
                expr = f.read()

            def run_eval() -> None:
                print(f"    eval on {client}:\n{ctl('eval', expr)}", file=sys.stderr, flush=True)

            timer = threading.Timer(3.0, run_eval)
            timer.start()
        b0 = _beam_counts(pid)
        res = run_one(client, n, *args, **kw)  # type: ignore[arg-type]
        b1 = _beam_counts(pid)
        if timer is not None:
            timer.join()
        per = "  ".join(f"{k} {(b1[k] - b0[k]) / n:.2f}" for k in b0)
        print(f"    broker per flow, {client}: {per}", file=sys.stderr, flush=True)
        if reductions:
            total = 0.0
            rows = []
            for line in ctl("eval", _FETCH).splitlines():
                parts = line.split(" ", 1)
                if len(parts) == 2 and parts[0].isdigit():
                    total += int(parts[0])
                    rows.append((int(parts[0]) / n, parts[1]))
            print(f"    reductions per flow, {client}: {total / n:,.0f}", file=sys.stderr)
            for r, kind in rows[:14]:
                print(f"      {r:>10,.0f}  {kind}", file=sys.stderr)
            sys.stderr.flush()
        return res

    _flow_runner.run_one = counted  # type: ignore[assignment]


if __name__ == "__main__":
    sys.exit(main())
