"""tests/tracing/apps.py under uvicorn (`tests.tracing.otel_app:app`): the spans finished so far
come back as the ack of the `spans` event."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from fastapi_realtime import Socket

from .apps import dump, make_app, memory_provider

provider, exporter = memory_provider()
rt = make_app(provider)


@rt.on("spans")
async def spans(socket: Socket) -> list[dict[str, Any]]:
    return [dump(span) for span in exporter.get_finished_spans()]


app = FastAPI()
app.include_router(rt.router)
