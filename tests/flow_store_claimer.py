"""Helper process of the flow store suite: claims stage keys 0..N-1 of one instance with its own
name as the value, as fast as it can, then prints ``{key: winner}`` as JSON on its last line.

Run as ``python flow_store_claimer.py URL NAME N``; two of these racing on one store must print the
same winners.
"""
from __future__ import annotations

import asyncio
import json
import sys

from mmate_fast.stageflow.store import open_store


async def main(url: str, name: str, count: int) -> dict[str, str]:
    store = open_store(url)
    try:
        got = await asyncio.gather(*(store.claim_stage("race", f"k{n}", name) for n in range(count)))
        return {f"k{n}": value for n, value in enumerate(got)}
    finally:
        await store.close()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))))
