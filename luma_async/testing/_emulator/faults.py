"""Fault injection: what to do with the next request of a route, instead of answering it.

Pure (no server): a thread-safe queue of :class:`Fault` values, and the :class:`Reply` a
fault answers with.  The server (``server.py``) takes a fault per request and carries it out
(wait, drop the connection, answer another task, or send :func:`fault_reply`).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

import attrs

from luma_async.testing._emulator.shapes import Deployment, Reply, reason

#: The routes of the API itself, which need the key.
API_ROUTES = frozenset(
    {
        "generate",
        "extend",
        "get",
        "download_video_url",
        "file_upload",
        "tasks",
        "usage",
        "account",
    }
)
#: Routes that :meth:`LumaEmulator.inject` and :meth:`LumaEmulator.count` know: the API's,
#: the video host's, and ``*`` for any.
ROUTES = API_ROUTES | {"cdn", "video", "file", "image", "*"}


@attrs.define
class Fault:
    """A fault waiting in the queue of :meth:`LumaEmulator.inject`; ``remaining`` counts down."""

    route: str
    remaining: int
    status: int | None = None
    body: bytes | str | Mapping[str, Any] | list[Any] | None = None
    headers: Mapping[str, str] | None = None
    html: bool = False
    delay: float = 0.0
    drop: bool = False
    retry_after: float | str | None = None
    after_processing: bool = False
    other_task: bool = False

    @property
    def answers(self) -> bool:
        """Whether the fault replaces the answer (rather than only delaying it)."""
        return (
            self.status is not None
            or self.body is not None
            or self.html
            or self.retry_after is not None
            or self.other_task
        )


class FaultQueue:
    """Faults in the order injected; each request takes the first one for its route."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        if fault.route not in ROUTES:
            raise ValueError(f"unknown route {fault.route!r}; expected one of {sorted(ROUTES)}")
        if fault.remaining < 1:
            raise ValueError("count must be at least 1")
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, route: str) -> Fault | None:
        """The fault for the next request of ``route`` (counted down), if any."""
        with self._lock:
            for fault in self._faults:
                if fault.route in (route, "*"):
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)


def fault_reply(fault: Fault, deployment: Deployment) -> Reply:
    """The answer of a fault that :attr:`~Fault.answers` (other than ``other_task``).

    Without a status, ``body`` answers 200 (a corrupt answer), ``retry_after`` 429, ``html``
    (and anything else) 502.  ``body`` is sent as is (JSON for a dict/list), ``html`` as an
    nginx error page, else the dialect's error body.
    """
    status = fault.status
    if status is None:
        status = 200 if fault.body is not None else 429 if fault.retry_after is not None else 502
    headers: dict[str, str] = {}
    if fault.retry_after is not None:
        retry = fault.retry_after
        headers["Retry-After"] = retry if isinstance(retry, str) else str(int(retry))
    if fault.headers:
        headers.update(fault.headers)
    if fault.body is not None:
        body = fault.body
        if isinstance(body, (Mapping, list)):
            reply = Reply.json(body, status)
        else:
            raw = body.encode() if isinstance(body, str) else body
            try:
                json.loads(raw)
            except (ValueError, RecursionError):
                kind = "text/plain"
            else:
                kind = "application/json"
            reply = Reply(status, raw, kind)
    elif fault.html:
        title = f"{status} {reason(status)}"
        page = (
            f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
            f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
            "</body>\r\n</html>\r\n"
        )
        reply = Reply.html(page, status)
    else:
        reply = deployment.error(status, reason(status))
    return attrs.evolve(reply, headers=headers)
