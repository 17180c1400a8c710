"""The application the AsyncAPI tests describe: three routers, models, dataclasses and enums."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import re
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from pydantic import BaseModel, Field

from fastapi_realtime import Realtime, RealtimeRouter, Socket


class Mood(enum.Enum):
    HAPPY = "happy"
    GRUMPY = "grumpy"


class ChatMessage(BaseModel):
    room: str
    text: Annotated[str, Field(min_length=1, max_length=500)]
    mood: Mood = Mood.HAPPY
    sent_at: datetime.datetime


class Receipt(BaseModel):
    ok: bool
    stored_at: datetime.datetime


class AuthPayload(BaseModel):
    token: str


@dataclasses.dataclass
class Point:
    x: float
    y: float


def _other_item() -> type[BaseModel]:
    class Item(BaseModel):  # same class name as the module-level Item, a different model
        label: str

    return Item


class Item(BaseModel):
    sku: str
    quantity: Annotated[int, Field(ge=1)]


OtherItem = _other_item()
Percent = Annotated[int, Field(ge=0, le=100)]
EVIL_EVENT = "<script>alert(1)</script>"


def current_user() -> str:
    return "alice"


root = RealtimeRouter()
chat = RealtimeRouter(namespace="/chat")
teams = RealtimeRouter(namespace=re.compile(r"^/team-\d+$"))


@root.on("connect")
async def on_connect(socket: Socket, auth: AuthPayload | None) -> None:
    """Accept everyone."""


@root.on("disconnect")
async def on_disconnect(socket: Socket, reason: str) -> None: ...


@root.on("say")
async def say(socket: Socket, msg: ChatMessage) -> Receipt:
    """Post a message to the lobby.

    The ack says when it was stored.
    """
    return Receipt(ok=True, stored_at=msg.sent_at)


@root.on("draw")
async def draw(socket: Socket, server: Realtime, at: Point, opacity: Percent = 100, *tags: str) -> None:
    """Draw a point; nothing to acknowledge."""


@root.on("raw")
async def raw(socket: Socket, anything, user: str = Depends(current_user)) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    return 1, "ok"


@root.on(EVIL_EVENT)
async def evil(socket: Socket) -> None: ...


@root.on_any()
async def fallback(socket: Socket, event: str, *args: Any) -> None: ...


@chat.on("message")
async def chat_message(socket: Socket, msg: ChatMessage, when: datetime.date | None = None) -> Receipt | None:
    return None


@chat.on("order")
async def order(socket: Socket, first: Item, second: OtherItem) -> list[Item]:  # type: ignore[valid-type]
    return [first]


@chat.on("lookup", response_model=Item)
async def lookup(socket: Socket, request: Request, sku: str, agent: str = Header(default="?")) -> dict[str, Any]:
    """`response_model` wins over the return annotation; request data is not an argument."""
    return {"sku": sku, "quantity": 1}


@chat.on("mystery")
async def mystery(socket: Socket, known: int, unknown: NotDefinedAnywhere) -> None:  # type: ignore[name-defined] # noqa: F821
    """An annotation that cannot be resolved costs only its own parameter."""


@teams.on("score")
async def score(socket: Socket, points: Annotated[int, Field(gt=0)], mood: Mood) -> int:
    return points


def make_realtime() -> Realtime:
    rt = Realtime(path="/socket.io")
    for router in (root, chat, teams):
        rt.include_router(router)
    return rt
