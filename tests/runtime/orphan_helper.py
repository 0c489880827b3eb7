"""Run by test_local_orphans: a 'server' that starts one replica, prints its pid, and waits.

Usage: ``orphan_helper.py STATE_DIR LOG_DIR asyncio|uvloop``.

The test kills this process with SIGKILL and checks that the replica dies with it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from llmos.runtime.base import ReplicaSpec
from llmos.runtime.local import LocalRuntime

CHILD = "import time; print('replica up', flush=True); time.sleep(600)"


async def main() -> None:
    runtime = LocalRuntime(Path(sys.argv[1]), Path(sys.argv[2]))
    await runtime.start()
    spec = ReplicaSpec(
        key="notebooks/default/nb/0", command=(sys.executable, "-c", CHILD), health=None
    )
    status = await runtime.ensure(spec)
    async for line in runtime.logs(spec.key, follow=True):
        if line == "replica up":
            break
    print(json.dumps({"pid": status.pid, "port": status.port}), flush=True)
    await asyncio.Event().wait()


if sys.argv[3] == "uvloop":
    import uvloop

    uvloop.run(main())
else:
    asyncio.run(main())
