"""Benchmark harness for fastapi-realtime (run with ``python -m bench`` from the repo root).

Compares fastapi-realtime with python-socketio and a raw ASGI WebSocket echo (the ceiling for
any Python ASGI server), all under the same uvicorn settings, driven by a node load generator
(``bench/loadgen.js``) that speaks the Engine.IO/Socket.IO text protocol directly.
"""
