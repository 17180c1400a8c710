"""An app for the shutdown test: the Realtime included (default) or mounted (SHUTDOWN_MOUNT=1).

Disconnect reasons are appended, one per line, to the file named by SHUTDOWN_REASONS, so the
test can read them after the server process has gone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from fastapi_realtime import Realtime, Socket

rt = Realtime(ping_interval=20.0, ping_timeout=20.0)
REASONS = Path(os.environ.get("SHUTDOWN_REASONS", os.devnull))


@rt.on("connect")
async def connect(socket: Socket, auth: Any) -> None:
    await socket.emit("welcome", socket.id)


@rt.on("disconnect")
async def disconnect(socket: Socket, reason: str) -> None:
    with REASONS.open("a") as out:
        out.write(reason + "\n")


app = FastAPI()
if os.environ.get("SHUTDOWN_MOUNT") == "1":
    app.mount("/socket.io", rt)
else:
    app.include_router(rt.router)
