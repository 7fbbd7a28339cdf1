"""Helper process of the flow store suite: races another process for the same stage keys.

``python flow_store_claimer.py URL NAME N ORDER BARRIER PARTIES``: opens the store, marks itself
ready in the folder BARRIER and waits until PARTIES processes are ready, then claims keys k0..kN-1
of instance "race" one after the other (ORDER ``fwd`` or ``rev``, so that two racers meet in the
middle and contend there) with its NAME as the value, and prints ``{key: winner}`` as JSON on its
last line. Racers on one store must print the same winners.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from mmate_fast.stageflow.store import open_store


async def main(url: str, name: str, count: int, order: str, barrier: Path, parties: int) -> dict[str, str]:
    store = open_store(url)
    try:
        await store.stage_result("race", "warm-up")  # connected before the start
        (barrier / f"{name}.ready").touch()
        deadline = time.monotonic() + 30
        while len(list(barrier.glob("*.ready"))) < parties:
            if time.monotonic() > deadline:
                raise SystemExit("the other racers never got ready")
            await asyncio.sleep(0.001)
        keys = range(count) if order == "fwd" else range(count - 1, -1, -1)
        won = {}
        for n in keys:
            won[f"k{n}"] = await store.claim_stage("race", f"k{n}", name)
        return dict(sorted(won.items()))
    finally:
        await store.close()


if __name__ == "__main__":
    url, name, count, order, barrier, parties = sys.argv[1:7]
    print(json.dumps(asyncio.run(main(url, name, int(count), order, Path(barrier), int(parties)))))
