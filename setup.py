"""The optional C accelerator of the Socket.IO text codec (everything else is in pyproject.toml).

`optional=True`: without a C compiler the package installs anyway and the codec stays pure
Python (fastapi_realtime/socketio/packet.py), with the same results.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "fastapi_realtime.socketio._speedups",
            ["fastapi_realtime/socketio/_speedups.c"],
            optional=True,
        )
    ]
)
