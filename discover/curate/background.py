"""Work the explorer does while the curator reads, on threads that never delay its exit.

`concurrent.futures.ThreadPoolExecutor` joins its threads when the interpreter exits, so a
Streamlit server told to stop while it compiles the clustering code in the background would
wait for the compiler (or for `discover explore`'s SIGKILL 10 s later). These workers are
daemon threads: a stopping server drops what they were doing, which is only ever a warm-up
or a cache load that the next start redoes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any


class DaemonExecutor:
    """`submit` like an executor's, run in order by up to `max_workers` daemon threads.

    Example:
        >>> DaemonExecutor().submit(sum, [1, 2]).result()
        3
    """

    def __init__(self, max_workers: int = 2, name: str = "discover") -> None:
        self.max_workers = max_workers
        self.name = name
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        future: Future = Future()
        self._tasks.put((future, fn, args))
        with self._lock:
            if len(self._threads) < self.max_workers:
                thread = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
        return future

    def _work(self) -> None:
        while True:
            future, fn, args = self._tasks.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(fn(*args))
            except BaseException as error:  # noqa: BLE001 (handed to whoever waits on the future)
                future.set_exception(error)
