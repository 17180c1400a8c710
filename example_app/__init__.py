"""Example chat app for fastapi-realtime: run it with `make run` and open http://127.0.0.1:8000/."""
