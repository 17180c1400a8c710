"""An in-process Socket.IO test client that drives the real ASGI app with real protocol bytes.

No network and no server process: each HTTP request and each WebSocket is an ASGI call of the
app whose messages travel through in-memory queues, and the app's lifespan runs on enter and
exit. The client speaks Engine.IO v4 / Socket.IO v5 with the package's own sans-I/O codecs.

```python
async with RealtimeTestClient(app) as client:       # in an async test
    sio = await client.connect(auth={"token": "t"})
    assert await sio.call("echo", "hi") == "hi"

with RealtimeTestClient(app) as client:             # in a sync test (a loop runs in a thread)
    sio = client.connect(transport="polling")
    assert sio.wait_for("welcome") == sio.id
```

The modules, each on the ones before it: `errors` (ConnectionRefused), `driver` (the in-memory
ASGI driver and lifespan), `transports` (Engine.IO over the driver), `socket` (the async
Socket.IO client of one namespace), `blocking` (the blocking facade), `client` (the client).
"""

from __future__ import annotations

from .blocking import BlockingClientSocket
from .client import BlockingClient, RealtimeTestClient
from .driver import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from .driver import ASGIApp as ASGIApp
from .errors import ConnectionRefused
from .socket import ClientSocket
from .socket import EventHandler as EventHandler
from .socket import TransportName as TransportName

__all__ = ["BlockingClient", "BlockingClientSocket", "ClientSocket", "ConnectionRefused", "RealtimeTestClient"]
