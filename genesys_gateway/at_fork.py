"""Fork safety: the objects that own connection pools, locks or worker threads re-create
them in a child process.

A client made before ``fork()`` (gunicorn ``--preload``, Celery's prefork pool) is copied
into every child with the parent's kept-alive connections (several processes writing to
one socket and reading each other's answers), its locks (perhaps held, at the moment of the
fork, by a parent thread that does not exist in the child) and its record of worker threads
that do not exist in the child either. Each such object calls :func:`reinit_in_child` once,
from its constructor; in a child, ``os.fork()`` returns only after ``reinit(obj)`` ran for
every registered object still alive (in the order they registered).

The registry holds weak references only: it keeps nothing alive, and an entry leaves it
when its object is collected. Importing this module does nothing; the first registration
installs the one ``os.register_at_fork`` hook of the process.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable, TypeVar

__all__ = ["reinit_in_child", "fresh_locks", "registered_count"]

logger = logging.getLogger("genesys_gateway")

T = TypeVar("T")
if TYPE_CHECKING:
    _Key = tuple[int, Callable[[Any], None]]

#: (id of the object, its reinit) -> (weak reference to the object, reinit)
_registry: dict[_Key, tuple[weakref.ref[Any], Callable[[Any], None]]] = {}
#: {"hook": token} once the hook is installed (``setdefault`` makes that happen once).
_installed: dict[str, object] = {}


def reinit_in_child(obj: T, reinit: Callable[[T], None]) -> None:
    """After a ``fork()``, call ``reinit(obj)`` in the child, as long as ``obj`` is alive.

    ``reinit`` runs in the child's only thread before ``os.fork()`` returns there: it must
    not wait for anything the parent's other threads held, and should replace such locks
    rather than take them. An exception is logged and the other objects are re-created
    all the same. Registering the same ``(obj, reinit)`` again changes nothing.
    """
    register_at_fork = getattr(os, "register_at_fork", None)
    if register_at_fork is None:  # no fork() on this platform
        return
    key: _Key = (id(obj), reinit)

    def forget(_ref: weakref.ref[Any]) -> None:
        # Called while obj is being freed, before its id can be reused.
        _registry.pop(key, None)

    _registry[key] = (weakref.ref(obj, forget), reinit)
    token = object()
    if _installed.setdefault("hook", token) is token:
        register_at_fork(after_in_child=_after_fork_in_child)


@functools.cache
def fresh_locks(*names: str) -> Callable[[Any], None]:
    """A ``reinit`` for :func:`reinit_in_child` that gives each named attribute a new
    ``threading.Lock`` (the same function for the same names, so registering it twice for
    one object changes nothing)."""

    def reinit(obj: Any) -> None:
        for name in names:
            setattr(obj, name, threading.Lock())

    return reinit


def registered_count() -> int:
    """How many registrations there are: one per live ``(obj, reinit)`` (for tests)."""
    return len(_registry)


def _after_fork_in_child() -> None:
    for ref, reinit in list(_registry.values()):
        obj = ref()
        if obj is None:
            continue
        try:
            reinit(obj)
        except Exception:
            logger.warning("could not re-create the %s in a forked child process",
                           type(obj).__name__, exc_info=True)
        del obj
