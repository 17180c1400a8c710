"""Connection admission, in one place: from a client's CONNECT packet to the CONNECT reply.

The namespace is looked up (declared or dynamic); the socket is new, or recovered from
whichever store holds its session (the in-memory store, or the adapter's, such as Redis
Streams); connect middlewares run (skipped for a recovered socket when recovery says so); the
connect handler runs; and the client gets the missed events and the CONNECT reply, or a
CONNECT_ERROR. Nothing of a refused socket stays registered, and a session it tried to recover
is put back for its real owner.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from .errors import connect_rejection
from .exceptions import ConnectionRejected
from .handlers import ExceptionHandler, call_exception_handler
from .recovery import Restored, generate_pid, valid_token
from .socket import Socket, SocketClient
from .socketio.packet import Packet, PacketType

if TYPE_CHECKING:
    from ._types import EioFrame
    from .namespace import Namespace
    from .router import Middleware

logger = logging.getLogger("fastapi_realtime")


class AdmissionServer(Protocol):
    """The server as admission uses it (server.Realtime is one; that module is above this one)."""

    @property
    def middlewares(self) -> Sequence[Middleware]: ...

    @property
    def skip_recovery_middlewares(self) -> bool: ...

    async def namespace_for(self, name: str, auth: Any) -> Namespace | None: ...

    def of_any(self, name: str) -> Namespace: ...

    def generate_socket_id(self) -> str: ...

    def exception_handler_for(self, exc: BaseException) -> ExceptionHandler[Socket] | None: ...


class AdmissionClient(SocketClient, Protocol):
    """The connection as admission uses it (client.Client is one)."""

    @property
    def server(self) -> AdmissionServer: ...

    @property
    def sockets(self) -> dict[str, Socket]: ...

    def joined(self) -> None: ...


async def connect(client: AdmissionClient, packet: Packet) -> None:
    """Admit `client` to the namespace of its CONNECT `packet`, or refuse it."""
    server = client.server
    session = client.session
    name = packet.namespace
    auth: dict[str, Any] = packet.data if packet.data is not None else {}
    nsp = await server.namespace_for(name, auth)
    if nsp is None:
        session.send(connect_error_frames(client, name, "Invalid namespace", None))
        return
    socket, restored = await new_socket(client, nsp, auth)
    client.sockets[name] = socket
    observer = nsp.observation.observer
    token = None if observer is None else observer.connect_started(name, socket.id, session)
    try:
        rejection = await admit(server, nsp, socket, auth)
    except BaseException:
        if observer is not None:
            observer.connect_finished(token, "cancelled")
        raise
    if observer is not None:
        refusal = rejection.message if rejection is not None else None if socket.connected else "client gone"
        observer.connect_finished(token, refusal)
    if rejection is not None or not socket.connected:
        # Refused, or the client went away before its middlewares let it in (then, as in
        # Node, its connect handler never ran): nothing of it stays registered, and a
        # session it tried to recover stays for its real owner.
        socket._held = None
        client.forget(socket)
        nsp.remove(socket)
        if restored is not None and nsp.recovery is not None:
            await nsp.recovery.put_back(restored)
        if rejection is not None:
            session.send(connect_error_frames(client, name, rejection.message, rejection.data))
        return
    if session.closed:
        # Gone while the connect handler ran: the close job that follows in this client's
        # order tells the disconnect handler.
        socket._held = None
        return
    session.manager.admit(session)
    client.joined()
    reply = connect_reply(nsp, socket)
    missed = restored.missed if restored is not None else None
    if missed:
        # The missed events, with their original offsets, then the CONNECT reply (§2.4.6);
        # only now, so a middleware that refuses the recovered client leaks nothing.
        session.send([*missed, *reply], bounded=False)
    else:
        session.send(reply)
    socket.release_held()


async def new_socket(client: AdmissionClient, nsp: Namespace, auth: dict[str, Any]) -> tuple[Socket, Restored | None]:
    """A fresh socket, or the recovered one (with what the store gave back: the frames it
    missed) when the auth carries a valid pid and offset."""
    server = client.server
    store = nsp.recovery
    if store is None:
        return Socket(nsp, client, server.generate_socket_id(), auth), None
    pid, offset = auth.get("pid"), auth.get("offset")
    if valid_token(pid) and valid_token(offset):
        restored = await store.restore(pid, offset)
        observer = nsp.observation.observer
        if observer is not None:
            observer.recovery(nsp.name, "missed" if restored is None or restored.snapshot.sid in nsp.sockets else "recovered")
        if restored is not None:
            snapshot = restored.snapshot
            if snapshot.sid in nsp.sockets:
                await store.put_back(restored)  # its id is in use: not ours to take
            else:
                socket = Socket(nsp, client, snapshot.sid, auth)
                socket.pid = snapshot.pid
                socket.recovered = True
                socket.data = snapshot.data
                # No await since the store's replay ended: nothing falls in between.
                nsp.begin_recovery(snapshot.sid, snapshot.rooms)
                return socket, restored
    socket = Socket(nsp, client, server.generate_socket_id(), auth)
    socket.pid = generate_pid()
    return socket, None


async def admit(server: AdmissionServer, nsp: Namespace, socket: Socket, auth: Any) -> ConnectionRejected | None:
    """Middlewares, then (if the client is still there) the connect handler.

    Returns the rejection, if any; `socket.connected` tells whether the socket got as far
    as its connect handler (it is registered from then on).
    """
    rejection: ConnectionRejected | None = None
    try:
        if not (socket.recovered and server.skip_recovery_middlewares):
            await run_middlewares(server, nsp, socket)
        if socket.client.session.closed:
            return None
        nsp.add(socket)
        socket.connected = True
        if nsp.table.connect is not None:
            await nsp.table.connect.call(socket, [auth])
    except ConnectionRejected as exc:
        rejection = exc
    except Exception as exc:
        rejection = await reject_connection(server, nsp, socket, exc)
    if rejection is not None:
        admitted, socket.connected = socket.connected, False
        nsp.remove(socket)
        observer = nsp.observation.observer
        if admitted and observer is not None:
            # It was announced as connected when it joined the namespace; now it is gone.
            observer.socket_disconnected(socket, "server namespace disconnect")
    return rejection


async def run_middlewares(server: AdmissionServer, nsp: Namespace, socket: Socket) -> None:
    for middleware in (*server.middlewares, *nsp.table.middlewares):
        result = middleware(socket)
        if inspect.isawaitable(result):
            await result


async def reject_connection(
    server: AdmissionServer, nsp: Namespace, socket: Socket, exc: Exception
) -> ConnectionRejected:
    """The CONNECT_ERROR for an exception from a connect middleware or handler.

    An exception handler (the connect handler's routers', then the server's) may return a
    ConnectionRejected, or raise one; any other return value becomes the error's `data`.
    """
    observer = nsp.observation.observer
    if observer is not None:
        observer.handler_failed(socket, "connect", exc)
    spec = nsp.table.connect
    handler = (None if spec is None else spec.exception_handler_for(exc)) or server.exception_handler_for(exc)
    if handler is not None:
        try:
            result = await call_exception_handler(handler, socket, exc)
        except ConnectionRejected as rejection:
            return rejection
        except Exception:
            logger.exception("exception handler failed for the connection to %s", socket.namespace)
            return ConnectionRejected("Internal server error")
        return result if isinstance(result, ConnectionRejected) else ConnectionRejected("Connection rejected", result)
    refused = connect_rejection(exc)
    if refused is None:
        logger.exception("connect handler failed on %s", socket.namespace, exc_info=exc)
        return ConnectionRejected("Internal server error")
    return refused


def connect_reply(nsp: Namespace, socket: Socket) -> list[EioFrame]:
    data: dict[str, str] = {"sid": socket.id}
    if socket.pid is not None:
        data["pid"] = socket.pid
    return nsp.encode(Packet(PacketType.CONNECT, nsp.name, data))


def connect_error_frames(client: AdmissionClient, namespace: str, message: str, data: Any) -> list[EioFrame]:
    payload: dict[str, Any] = {"message": message}
    if data is not None:
        payload["data"] = data
    return client.server.of_any(namespace).encode(Packet(PacketType.CONNECT_ERROR, namespace, payload))
