"""A :class:`LumaSession`'s life: its states, the aiohttp session it makes, how it introduces
itself (``User-Agent``).

The session holds one :class:`SessionState` and asks here whether a use is allowed; what it
opens and closes (the aiohttp session, the transport, the hub, a callback receiver) it
still does itself, in :meth:`LumaSession.aclose`.
"""

from __future__ import annotations

import enum
import platform

import aiohttp

from luma_async._errors import SessionClosedError

__all__ = ["DEFAULT_CONNECTIONS", "SessionState", "check_enter", "check_open", "user_agent"]

#: aiohttp's own default connector limit, when the budget sets none.
DEFAULT_CONNECTIONS = 100

_OPENED_TWICE = (
    "cannot open a LumaSession more than once: it is already in use by an 'async with' block"
)
_CLOSED = "this LumaSession is closed; create a new one"


class SessionState(enum.Enum):
    """Where a :class:`LumaSession` is in its life (httpx's ``ClientState``).

    ``UNOPENED``: made, usable without ``async with`` (its aiohttp session is made on first
    use).  ``OPENED``: inside its ``async with`` block.  ``CLOSED``: after ``aclose()`` or
    the block's end; every use raises :class:`SessionClosedError`.  A session goes only
    forward: UNOPENED -> OPENED -> CLOSED, or UNOPENED -> CLOSED.
    """

    UNOPENED = "unopened"
    OPENED = "open"
    CLOSED = "closed"


def check_open(state: SessionState) -> None:
    """Any use of a session: refused once it is closed."""
    if state is SessionState.CLOSED:
        raise SessionClosedError(_CLOSED)


def check_enter(state: SessionState) -> None:
    """``async with``: at most once, and never after closing."""
    if state is SessionState.OPENED:
        raise RuntimeError(_OPENED_TWICE)
    check_open(state)


def client_session(max_connections: int | None) -> aiohttp.ClientSession:
    """The aiohttp session a session makes (and later closes) when it was given none."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_connections or DEFAULT_CONNECTIONS),
        raise_for_status=False,
    )


def user_agent() -> str:
    from importlib.metadata import version  # noqa: PLC0415 - only when a session is made

    return (
        f"luma-async/{version('luma-async')} aiohttp/{aiohttp.__version__} "
        f"Python/{platform.python_version()}"
    )
