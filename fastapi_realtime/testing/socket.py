"""The async Socket.IO v5 client of one namespace, over its own Engine.IO session."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, Literal

from ..broadcast import ack_data, ack_value
from ..exceptions import AckTimeoutError, DisconnectedError, LocalProtocolError
from ..socketio.packet import Packet, PacketType, encode
from ..socketio.parser import Decoder
from .driver import DEFAULT_TIMEOUT, AsgiDriver
from .errors import ConnectionRefused
from .transports import PollingTransport, Target, Transport, WebSocketTransport

__all__ = ["ClientSocket", "EventHandler", "Spawn", "TransportName"]

TransportName = Literal["websocket", "polling"]
EventHandler = Callable[..., Any]
Spawn = Callable[[Coroutine[Any, Any, None]], None]
"""Runs a background coroutine that the owning client cancels when it exits."""

# The server is trusted to send valid packets; this only bounds a runaway one.
MAX_ATTACHMENTS = 10_000


class ClientSocket:
    """A Socket.IO client connected to one namespace over its own Engine.IO session.

    Every event is recorded from the connection on (`received`), so `wait_for` never misses
    one. Args are kept as sent: with connection state recovery on, stored events carry their
    offset as the last argument, as socket.io-client shows them too.

    As in socket.io-client, events that arrive before the CONNECT reply (the missed events of a
    recovery) wait until it is processed; then each is recorded in order and, when the session
    has a pid, its offset becomes the one `reconnect()` sends.
    """

    def __init__(
        self,
        asgi: AsgiDriver,
        spawn: Spawn,
        target: Target,
        namespace: str,
        auth: dict[str, Any] | None,
        transport: TransportName,
    ) -> None:
        """A socket that `_open()` connects; `target` is where its sessions' requests go."""
        if transport not in ("websocket", "polling"):
            raise ValueError(f"transport must be 'websocket' or 'polling', got {transport!r}")
        self.namespace = namespace
        self.transport: TransportName = transport
        self.id: str | None = None
        self.pid: str | None = None
        self.offset: str | None = None
        self.connected = False
        self.recovered = False
        self.disconnect_reason: str | None = None
        self.received: list[tuple[str, tuple[Any, ...]]] = []
        self._asgi = asgi
        self._spawn = spawn
        self._target = target
        self._auth = auth
        self._cursors: dict[str, int] = {}
        self._arrived = asyncio.Event()
        self._handlers: dict[str, EventHandler] = {}
        self._acks: dict[int, asyncio.Future[list[Any]]] = {}
        self._next_ack = 0
        self._connecting: asyncio.Future[None] | None = None
        self._sent_pid: str | None = None
        self._early: list[Packet] = []  # events that came before the CONNECT reply
        self._engine: Transport | None = None
        self._decoder = Decoder(max_attachments=MAX_ATTACHMENTS)

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<ClientSocket {self.namespace} {self.id} {self.transport} {state}>"

    # -- connecting ------------------------------------------------------------------------
    async def _open(self, timeout: float) -> None:
        transport_class = WebSocketTransport if self.transport == "websocket" else PollingTransport

        # Late news from an earlier session must not touch this one.
        def on_message(data: str | bytes) -> None:
            if self._engine is engine:
                self._on_message(data)

        def on_close(reason: str) -> None:
            if self._engine is engine:
                self._on_close(reason)

        engine = self._engine = transport_class(self._asgi, self._target, on_message, on_close)
        self._decoder = Decoder(max_attachments=MAX_ATTACHMENTS)
        connecting = self._connecting = asyncio.get_running_loop().create_future()
        self._early.clear()
        # As socket.io-client: once connected, the pid and the last offset ride in the auth.
        sent_pid = self._sent_pid = self.pid
        auth = self._auth
        if sent_pid is not None:
            auth = {"pid": sent_pid, **({"offset": self.offset} if self.offset is not None else {}), **(auth or {})}
        try:
            await engine.open(timeout)
            self._send(Packet(PacketType.CONNECT, self.namespace, auth))
            try:
                # The CONNECT reply itself is handled as it arrives (`_connected`), before
                # any frame that follows it.
                await asyncio.wait_for(connecting, timeout)
            except BaseException:
                self.connected = False
                await engine.close()
                raise
        finally:
            self._connecting = None
            self._early.clear()

    async def reconnect(self, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Connect again with a new Engine.IO session, sending `pid` and the last offset in the auth.

        Afterwards `recovered` tells whether the server restored the session (same id, the
        missed events delivered first).
        """
        if self.connected:
            raise LocalProtocolError("the socket is connected; drop() or disconnect() it first")
        await self._open(timeout)

    # -- incoming --------------------------------------------------------------------------
    def _on_message(self, data: str | bytes) -> None:
        try:
            packet = self._decoder.feed(data)
            if packet is not None:
                self._on_packet(packet)
        except Exception as exc:  # a server bug the test should hear about
            self._asgi.errors.append(exc)

    def _on_packet(self, packet: Packet) -> None:
        kind = packet.type
        if kind is PacketType.CONNECT:
            if self._connecting is not None and not self._connecting.done():
                if isinstance(packet.data, dict) and "sid" in packet.data:
                    self._connected(packet.data)
                    self._connecting.set_result(None)
                else:
                    self._connecting.set_exception(ConnectionRefused(f"a CONNECT reply without a sid: {packet.data!r}"))
        elif kind is PacketType.CONNECT_ERROR:
            data = packet.data
            error = (
                ConnectionRefused(str(data.get("message")), data.get("data"))
                if isinstance(data, dict)
                else ConnectionRefused(str(data))
            )
            if self._connecting is not None and not self._connecting.done():
                self._connecting.set_exception(error)
        elif kind is PacketType.EVENT or kind is PacketType.BINARY_EVENT:
            if self.connected:
                self._on_event(packet)
            elif self._connecting is not None and not self._connecting.done():
                self._early.append(packet)  # socket.io-client's receiveBuffer
        elif kind is PacketType.ACK or kind is PacketType.BINARY_ACK:
            future = self._acks.pop(packet.id, None) if packet.id is not None else None
            if future is not None and not future.done():
                future.set_result(list(packet.data))
        elif kind is PacketType.DISCONNECT:
            self._gone("io server disconnect")
            engine = self._engine
            if engine is not None:  # the last socket of the session went: close it, as a Manager does
                self._spawn(engine.close())

    def _connected(self, reply: dict[str, Any]) -> None:
        """The CONNECT reply, as socket.io-client's `onconnect`: the new id and pid first, then
        the events that came before it, each recorded with the pid now known."""
        self.id = str(reply["sid"])
        self.pid = reply.get("pid")
        self.recovered = self._sent_pid is not None and self.pid == self._sent_pid
        self.connected = True
        self.disconnect_reason = None
        early, self._early = self._early, []
        for packet in early:
            self._on_event(packet)

    def _on_event(self, packet: Packet) -> None:
        event, *args = packet.data
        # socket.io-client's `_lastOffset`; there an ack callback is the last argument, never an offset
        if packet.id is None and self.pid is not None and args and isinstance(args[-1], str):
            self.offset = args[-1]
        self.received.append((str(event), tuple(args)))
        self._arrived.set()
        self._arrived = asyncio.Event()
        handler = self._handlers.get(str(event))
        if handler is not None or packet.id is not None:
            self._spawn(self._run_handler(handler, args, packet.id))

    async def _run_handler(self, handler: EventHandler | None, args: list[Any], ack_id: int | None) -> None:
        result = None
        if handler is not None:
            try:
                result = handler(*args)
                if inspect.isawaitable(result):
                    result = await result
            except Exception as exc:
                self._asgi.errors.append(exc)
                return
        if ack_id is not None and self.connected:
            data = ack_data(result)
            self._send(Packet(PacketType.ACK, self.namespace, data, ack_id))

    def _on_close(self, reason: str) -> None:
        if self._connecting is not None and not self._connecting.done():
            self._connecting.set_exception(DisconnectedError(f"the session closed before the CONNECT reply ({reason})"))
        self._gone(reason)

    def _gone(self, reason: str) -> None:
        if not self.connected:
            return
        self.connected = False
        self.disconnect_reason = reason
        for future in self._acks.values():
            if not future.done():
                future.set_exception(DisconnectedError(f"disconnected ({reason}) before the ack"))
        self._acks.clear()
        self._arrived.set()
        self._arrived = asyncio.Event()

    # -- outgoing --------------------------------------------------------------------------
    def _send(self, packet: Packet) -> None:
        assert self._engine is not None
        text, *attachments = encode(packet)
        self._engine.send(["4" + str(text), *attachments])

    def _check_connected(self) -> None:
        if not self.connected:
            raise DisconnectedError(f"the socket is not connected ({self.disconnect_reason})")

    async def emit(self, event: str, *args: Any) -> None:
        """Send an event; `bytes` anywhere in the args travel as binary attachments."""
        self._check_connected()
        self._send(Packet(PacketType.EVENT, self.namespace, [event, *args]))
        assert self._engine is not None
        await self._engine.flush()

    async def call(self, event: str, *args: Any, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """Send an event with an ack id and return the server's ack: None, its one arg, or a tuple.

        Raises AckTimeoutError (a TimeoutError) if no ack comes within `timeout` seconds, and
        DisconnectedError if the connection ends first.
        """
        self._check_connected()
        ack_id = self._next_ack
        self._next_ack += 1
        future = self._acks[ack_id] = asyncio.get_running_loop().create_future()
        self._send(Packet(PacketType.EVENT, self.namespace, [event, *args], ack_id))
        try:
            return ack_value(await asyncio.wait_for(future, timeout))
        except asyncio.TimeoutError:
            raise AckTimeoutError(f"no ack for {event!r} within {timeout}s") from None
        finally:
            self._acks.pop(ack_id, None)

    async def wait_for(self, event: str, *, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """Return the next occurrence of `event` not returned before: None, its one arg, or a tuple.

        Events are recorded from the connection on, so one that came before this call counts.
        Raises TimeoutError after `timeout` seconds, DisconnectedError if the socket is
        disconnected and no such event is left.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            seen = self._cursors.get(event, 0)
            matches = [args for name, args in self.received if name == event]
            if len(matches) > seen:
                self._cursors[event] = seen + 1
                return ack_value(list(matches[seen]))
            if not self.connected and self._connecting is None:
                raise DisconnectedError(f"no {event!r} event and the socket is disconnected ({self.disconnect_reason})")
            try:
                await asyncio.wait_for(self._arrived.wait(), max(0.0, deadline - loop.time()))
            except asyncio.TimeoutError:
                raise TimeoutError(f"no {event!r} event within {timeout}s") from None

    def on(self, event: str, handler: EventHandler) -> None:
        """Call `handler(*args)` on each `event`; when the server asked for an ack, its return value
        (None, a value, or a tuple of several) is the ack. The handler may be async."""
        self._handlers[event] = handler

    async def disconnect(self) -> None:
        """Leave the namespace (the server sees "client namespace disconnect") and close the session."""
        if self.connected:
            self._send(Packet(PacketType.DISCONNECT, self.namespace))
            self._gone("io client disconnect")
        if self._engine is not None and not self._engine.closed:
            await self._engine.close()

    async def drop(self) -> None:
        """Lose the transport with no close packet, as a network failure looks to the server.

        Returns once the app has seen the connection go; `reconnect()` may follow.
        """
        self._gone("transport close")
        if self._engine is not None and not self._engine.closed:
            await self._engine.drop()

    async def _terminate(self) -> None:
        if self._engine is not None and not self._engine.closed:
            await self._engine.drop()
        self._gone("io client disconnect")
