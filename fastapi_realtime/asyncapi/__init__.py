"""AsyncAPI 3.0 description of a Realtime server, read from its registered handlers.

The model: one server (Socket.IO v5 at `realtime.path`), one channel per namespace (a dynamic
namespace is one channel whose address is the parameter `{namespace}`), one message per event
the server handles, and a `receive` operation per message whose `reply` is the ack when the
handler returns something (its `response_model` or return annotation). A message payload is
the event's argument list, in order, as Socket.IO sends it: `socket.emit("move", a, b)`
carries `[a, b]`.

Which parameters are event arguments is read from the handler's call plan (`HandlerSpec.plan`),
so the document binds exactly as the server does. Events the application emits are not
declared anywhere; the only `send` operation is the server's own `error` event.

The modules, each one job, importing down this list only:
- `signature`: which handler parameters are event arguments, annotations resolved;
- `schemas`: their JSON Schemas through pydantic, in draft-07;
- `payloads`: argument lists and acks as message payloads;
- `messages`: the protocol messages every namespace shares;
- `info`: the document's title, version and description;
- `document`: the document, from the handler tables alone (`build_document`);
- `tables`, `page`: the self-contained HTML page (`asyncapi_html`);
- `routes`: a Realtime server's document (`build_asyncapi`) and the docs routes installed on it.
"""

from .document import build_document
from .info import DocsInfo, info_from_scope
from .page import asyncapi_html
from .routes import build_asyncapi

__all__ = ["DocsInfo", "asyncapi_html", "build_asyncapi", "build_document", "info_from_scope"]
