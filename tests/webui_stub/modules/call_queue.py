# ruff: noqa: PTH100, PTH103, PTH109, PTH118, PTH119, PTH120, PTH112, PTH113, PERF203, PERF401, RUF012, C408, PLR0912, PLR0915, E501, N802
"""mirrors modules/call_queue.py: queue_lock (a non-reentrant lock, like fifo_lock.FIFOLock)."""

import threading

queue_lock = threading.Lock()  # mirrors modules/call_queue.py: queue_lock (non-reentrant)


def wrap_queued_call(func):  # mirrors modules/call_queue.py: wrap_queued_call
    def f(*args, **kwargs):
        with queue_lock:
            return func(*args, **kwargs)

    return f
