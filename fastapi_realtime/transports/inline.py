"""Running a job in the transport's own task, and handing the transport's work to a new task
the first time the job has to wait."""

from __future__ import annotations

import contextvars
import types
from collections.abc import Callable, Coroutine, Generator
from typing import Any


@types.coroutine
def run_here(job: Coroutine[Any, Any, None], on_block: Callable[[], None]) -> Generator[Any, Any, bool]:
    """Run `job` in this task, in a context of its own as a task would have; the first time it
    waits, call `on_block`. Returns whether it waited.

    A job that finishes without waiting (most event handlers) costs no task at all, and one
    that waits stays in this task, so current_task(), cancellation and timeouts inside it
    behave as in any task.
    """
    context = contextvars.copy_context()
    try:
        yielded = context.run(job.send, None)
    except StopIteration:
        return False
    on_block()
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            job.close()
            raise
        except BaseException as exc:  # a cancellation of this task: the job's to handle
            try:
                yielded = context.run(job.throw, exc)
            except StopIteration:
                return True
        else:
            try:
                yielded = context.run(job.send, sent)
            except StopIteration:
                return True
