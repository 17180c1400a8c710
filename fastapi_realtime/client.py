"""One Engine.IO connection seen from Socket.IO: its namespaces, its decoder, its event order.

Packets from a client are handled one at a time in arrival order by a worker task that exists
only while there is work, so an idle connection holds no task. ACKs skip the queue: a handler
awaiting `emit_with_ack` must see the answer while it runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from . import admission
from .admission import AdmissionServer
from .exceptions import RemoteProtocolError
from .options import ServerOptions
from .sessions import EngineSession
from .socket import Socket
from .socketio import msgpack_codec
from .socketio.packet import Packet, PacketType
from .socketio.parser import Decoder

logger = logging.getLogger("fastapi_realtime")

Job = Packet | Callable[[], Awaitable[None]]


class ClientServer(AdmissionServer, Protocol):
    """The server as its connections use it (server.Realtime is one; that module is above this
    one): its settings, and what admission needs."""

    @property
    def options(self) -> ServerOptions: ...


class Client:
    __slots__ = (
        "server", "session", "decoder", "sockets", "_inbox", "_busy", "_worker", "_idle", "_space",
        "_max_pending", "_connect_timer", "_concurrent", "_loop",
    )

    def __init__(self, server: ClientServer, session: EngineSession) -> None:
        self.server = server
        self.session = session
        options = server.options
        self.decoder: Decoder | msgpack_codec.Decoder = (
            msgpack_codec.Decoder() if options.parser == "msgpack" else Decoder(max_attachments=options.max_attachments)
        )
        self.sockets: dict[str, Socket] = {}
        self._inbox: list[Job] = []  # a list: cheaper than a deque when idle
        # Whether a job runs now (in the WebSocket reader's task or in `_worker`): later ones queue.
        self._busy = False
        self._worker: asyncio.Task[None] | None = None
        self._idle: asyncio.Future[None] | None = None  # made by wait_idle, resolved when not busy
        self._space: asyncio.Future[None] | None = None
        self._max_pending = server.options.max_pending_events
        # Running calls of `concurrent=True` handlers; made on first use (most clients have none).
        self._concurrent: set[asyncio.Task[None]] | None = None
        self._loop = loop = asyncio.get_running_loop()
        self._connect_timer: asyncio.TimerHandle | None = loop.call_later(server.options.connect_timeout, self._connect_timeout)

    def _connect_timeout(self) -> None:
        self._connect_timer = None
        if not self.sockets:
            self.close()

    # -- incoming -------------------------------------------------------------------------
    def on_message(self, data: str | bytes) -> Awaitable[None] | None:
        """Take one message. Returns None, a future to wait for before reading more
        (backpressure), or, when nothing else runs, the job itself for the task that fed the
        message to run (the WebSocket reader or the POST; either moves its own work to a new
        task if the job has to wait)."""
        try:
            packet = self.decoder.feed(data)
        except RemoteProtocolError as exc:
            self.session.parse_error(exc)
            return None
        if packet is None:
            return None
        kind = packet.type
        if kind is PacketType.ACK or kind is PacketType.BINARY_ACK:
            socket = self.sockets.get(packet.namespace)
            if socket is None:
                self.close()
            else:
                socket.on_ack(packet)
            return None
        if not self._busy:
            self._busy = True
            return self._run(packet)
        return self._enqueue(packet)

    def _enqueue(self, job: Job) -> asyncio.Future[None] | None:
        inbox = self._inbox
        inbox.append(job)
        if self._busy:
            if len(inbox) > self._max_pending:
                # Stop reading from this client until its handlers catch up.
                if self._space is None:
                    self._space = self._loop.create_future()
                return self._space
            return None
        if self._loop.is_closed():
            # Stranded with its event loop (EngineSession.abandon): no handler can run any more.
            inbox.clear()
            return None
        self._busy = True
        self._worker = self._loop.create_task(self._drain())
        return None

    async def _run(self, packet: Packet) -> None:
        """One packet, then whatever queued meanwhile (run by the WebSocket reader)."""
        try:
            try:
                socket = self.sockets.get(packet.namespace)
                if packet.type is PacketType.EVENT and socket is not None and not self.session.closed:
                    # The usual packet, handled here rather than through _dispatch (one
                    # coroutine less per event).
                    running = socket.handle_event(packet)
                    if running is not None:
                        await running
                else:
                    await self._dispatch(packet)
            except Exception:
                logger.exception("error while handling a packet from %s", self.session.sid)
            if self._inbox:
                await self._jobs()
        finally:
            self._done()

    async def _drain(self) -> None:
        """The worker task: the queued jobs."""
        try:
            await self._jobs()
        finally:
            self._worker = None
            self._done()

    async def _jobs(self) -> None:
        inbox = self._inbox
        while inbox:
            job = inbox.pop(0)
            space = self._space
            if space is not None and len(inbox) <= self._max_pending // 2:
                self._space = None
                if not space.done():
                    space.set_result(None)
            try:
                if isinstance(job, Packet):
                    await self._dispatch(job)
                else:
                    await job()
            except Exception:
                logger.exception("error while handling a packet from %s", self.session.sid)

    def _done(self) -> None:
        self._busy = False
        idle = self._idle
        if idle is not None:
            self._idle = None
            if not idle.done():
                idle.set_result(None)

    async def _dispatch(self, packet: Packet) -> None:
        socket = self.sockets.get(packet.namespace)
        kind = packet.type
        if self.session.closed and (socket is None or kind is PacketType.CONNECT):
            return
        if kind is PacketType.CONNECT:
            if socket is not None:
                self.close()  # a second CONNECT for the same namespace: invalid state
            else:
                await admission.connect(self, packet)
        elif kind is PacketType.CONNECT_ERROR:
            return  # only meaningful server -> client; Node ignores it too
        elif socket is None:
            self.close()  # a packet for a namespace the client has not joined
        elif kind is PacketType.DISCONNECT:
            socket.on_close("client namespace disconnect")
        else:
            running = socket.handle_event(packet)
            if running is not None:
                await running

    def joined(self) -> None:
        """A namespace admitted the client: the connect timeout no longer applies."""
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None

    # -- lifecycle -----------------------------------------------------------------------------
    def forget(self, socket: Socket) -> None:
        if self.sockets.get(socket.namespace) is socket:
            del self.sockets[socket.namespace]

    def schedule_disconnect(self, socket: Socket, reason: str) -> None:
        handler = socket.nsp.table.disconnect
        if handler is None:
            return

        async def run() -> None:
            await handler.call(socket, [reason])

        self._enqueue(run)

    def close(self) -> None:
        """End the whole connection from the server side (invalid state, connect timeout)."""
        for socket in list(self.sockets.values()):
            socket.on_close("forced server close")
        self.session.close("forced close")

    def disconnect_all(self) -> None:
        """`socket.disconnect(close=True)`: every namespace is told, then the connection ends."""
        for socket in list(self.sockets.values()):
            socket.disconnect_now()
        self.session.close("forced close")

    def on_close(self, reason: str) -> None:
        """The connection ended. Packets that arrived before the end are still handled first
        (a DISCONNECT among them keeps its own reason); pending acks fail at once."""
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None
        space = self._space
        if space is not None and not space.done():
            space.set_result(None)
        for socket in self.sockets.values():
            socket.fail_acks()

        def close_sockets() -> None:
            for socket in list(self.sockets.values()):
                socket.on_close(reason)

        async def in_order() -> None:
            close_sockets()

        if self._loop.is_closed():
            # Stranded: the sockets leave their namespaces and rooms now (their disconnect
            # handlers cannot run).
            close_sockets()
        else:
            self._enqueue(in_order)

    def spawn(self, job: Awaitable[None]) -> None:
        """Run a `concurrent=True` handler call beside the in-order work, holding on to its task
        (the loop keeps only a weak reference) so that shutdown can wait for it."""
        tasks = self._concurrent
        if tasks is None:
            tasks = self._concurrent = set()
        task = asyncio.ensure_future(job)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def wait_idle(self) -> None:
        """Wait until every queued packet, concurrent handler call and disconnect handler has run."""
        if self._loop.is_closed():
            return  # stranded: nothing of it can run any more
        while self._busy or self._concurrent:
            if self._busy:
                if self._idle is None:
                    self._idle = self._loop.create_future()
                await asyncio.shield(self._idle)
            if self._concurrent:
                await asyncio.wait(list(self._concurrent))


class ClientManager:
    """The Engine.IO handler: one Client per session."""

    def __init__(self, server: ClientServer) -> None:
        self.server = server

    def on_open(self, session: EngineSession) -> None:
        session.context = Client(self.server, session)

    def on_message(self, session: EngineSession, data: str | bytes) -> Awaitable[None] | None:
        client: Client = session.context
        return client.on_message(data)

    def on_close(self, session: EngineSession, reason: str) -> None:
        client: Client | None = session.context
        if client is not None:
            client.on_close(reason)
