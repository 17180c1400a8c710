"""What travels between the chat page and the server, as pydantic models.

Incoming event payloads are validated by the library before a handler runs (a bad one is
answered with `{"error": "validation_error", "detail": [...]}`); outgoing acks are validated
against the handler's return annotation; events the server emits are models encoded as
FastAPI encodes responses.
"""

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, StringConstraints
from pydantic_core import PydanticCustomError

MAX_NICKNAME = 24
MAX_TEXT = 500
ROOM_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,23}")


def _squash_spaces(value: object) -> object:
    # Collapse runs of whitespace; non-strings go on to the str check, which rejects them.
    return " ".join(value.split()) if isinstance(value, str) else value


def _room_spelling(value: object) -> object:
    # "#General " and "general" name the same room.
    return value.strip().lower().removeprefix("#") if isinstance(value, str) else value


def _room_rule(value: str) -> str:
    if not ROOM_RE.fullmatch(value):
        # A custom error so the page can show the rule rather than a regular expression.
        raise PydanticCustomError("room_name", "room names are 1-24 characters: a-z, 0-9, - and _")
    return value


Nickname = Annotated[str, BeforeValidator(_squash_spaces), StringConstraints(min_length=1, max_length=MAX_NICKNAME)]
RoomName = Annotated[str, BeforeValidator(_room_spelling), AfterValidator(_room_rule)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT)]


class User(BaseModel):
    """Who is behind a socket: its id and the nickname it goes by now."""

    id: str
    nickname: Nickname


class Credentials(BaseModel):
    """The handshake's auth payload. Other keys (socket.io-client adds `pid` and `offset`
    when it tries to recover a session) are ignored."""

    nickname: Nickname | None = None


# ---- client -> server ---------------------------------------------------------------------


class JoinRoom(BaseModel):
    room: RoomName


class ChatMessage(BaseModel):
    room: RoomName
    text: Text


class TypingUpdate(BaseModel):
    typing: bool


class NicknameChange(BaseModel):
    nickname: Nickname


# ---- server -> client ---------------------------------------------------------------------


class Line(BaseModel):
    """One line of a room's conversation: a chat message or a system notice."""

    id: str
    room: str
    kind: Literal["chat", "system"]
    text: str
    ts: int  # milliseconds since the epoch, as JavaScript's Date wants
    author: str | None = None  # chat lines: the sender's nickname
    sid: str | None = None  # chat lines: the sender's socket id


class RoomInfo(BaseModel):
    name: str
    members: int
    nicknames: list[str]


class Welcome(BaseModel):
    id: str
    nickname: str
    rooms: list[RoomInfo]


class TypingState(BaseModel):
    room: str
    id: str
    nickname: str
    typing: bool


class Joined(BaseModel):
    """The ack of `join`: who is there and the recent history (oldest first)."""

    room: str
    members: list[str]
    history: list[Line]


class Receipt(BaseModel):
    """The ack of `message`: the message went out to the room under this id."""

    id: str
    ts: int


class NicknameChanged(BaseModel):
    nickname: str


class Health(BaseModel):
    status: Literal["ok"]
    online: int
