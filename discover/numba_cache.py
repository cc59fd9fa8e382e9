"""UMAP's numba kernels cached on disk, as pynndescent already caches its own.

UMAP declares its kernels without ``cache=True``, so every process compiles them again:
about 20 s on 2 cores before the first reduction of each ``discover`` command, explorer
server or worker. Turning numba's own file cache on for them (in ``umap/__pycache__``, or
numba's per-user cache directory where that is read-only) compiles them once per
installation. The machine code is what the compiler would produce again, so results do not
change; numba drops a cached kernel whose source file changed.
"""

from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)

_done: set[str] = set()


def cache_kernels(package: str = "umap") -> int:
    """Enable numba's file cache on every kernel of `package`'s imported modules not yet
    cached; the number of kernels turned on. Safe to call again: each module is visited once."""
    from numba.core.registry import CPUDispatcher

    enabled = 0
    for name, module in list(sys.modules.items()):
        if module is None or name in _done or not (name == package or name.startswith(package + ".")):
            continue
        _done.add(name)
        for value in vars(module).values():
            if not isinstance(value, CPUDispatcher) or value.py_func.__module__ != name:
                continue
            if type(value._cache).__name__ == "NullCache":
                try:
                    value.enable_caching()
                except RuntimeError as error:  # no writable place to cache: compile as before
                    log.debug("numba cache off for %s: %s", value.py_func.__qualname__, error)
                    return enabled
                enabled += 1
    return enabled
