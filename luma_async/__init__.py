"""luma-async: an asyncio-first client for the Luma video API as sold by API aggregators.

Extend a generated video and follow the new task to its end::

    async with LumaSession() as luma:
        task = await luma.extend(task_id, "the camera pulls back")
        async for change in luma.poll(task.id):
            print(change.state)

Import everything from here; the ``_``-modules are private.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from luma_async._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    DecodeError,
    DownloadError,
    InputError,
    LumaError,
    NotFoundError,
    PermissionDeniedError,
    PollTimeoutError,
    RateLimitError,
    ServerError,
    SessionClosedError,
    SubmissionUncertainError,
    TaskFailedError,
    TransportError,
    UpstreamAuthenticationError,
    WrongTaskError,
)
from luma_async._models import (
    Account,
    BatchResult,
    ExtendRequest,
    FinishedTask,
    Frame,
    GenerateRequest,
    ImageInput,
    RawVideo,
    StateChange,
    Task,
    TaskState,
    UploadedFile,
    Usage,
    Video,
)
from luma_async._policy import PollPolicy, RequestBudget, RetryPolicy
from luma_async._session import DEFAULT_BASE_URL, LumaSession
from luma_async._watch import FollowEnd, Listener, Subscription

if TYPE_CHECKING:
    from luma_async._batch import Batch
    from luma_async._callbacks import CallbackReceiver
    from luma_async._download import ProgressCallback
    from luma_async._journal import Journal, JournalEntry, JournalState

    __version__: str


# Loaded on first use, to keep ``import luma_async`` light: the callback receiver needs
# aiohttp's server half; batches, journals (sqlite3) and downloads are not every program's.
_LAZY = {
    "Batch": "luma_async._batch",
    "CallbackReceiver": "luma_async._callbacks",
    "Journal": "luma_async._journal",
    "JournalEntry": "luma_async._journal",
    "JournalState": "luma_async._journal",
    "ProgressCallback": "luma_async._download",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":  # reading the installed metadata costs tens of milliseconds
        from importlib.metadata import version  # noqa: PLC0415

        return version("luma-async")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'luma_async' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # looked up once
    return value


__all__ = [
    "DEFAULT_BASE_URL",
    "APIError",
    "Account",
    "AuthenticationError",
    "BadRequestError",
    "Batch",
    "BatchResult",
    "CallbackReceiver",
    "DecodeError",
    "DownloadError",
    "ExtendRequest",
    "FinishedTask",
    "FollowEnd",
    "Frame",
    "GenerateRequest",
    "ImageInput",
    "InputError",
    "Journal",
    "JournalEntry",
    "JournalState",
    "Listener",
    "LumaError",
    "LumaSession",
    "NotFoundError",
    "PermissionDeniedError",
    "PollPolicy",
    "PollTimeoutError",
    "ProgressCallback",
    "RateLimitError",
    "RawVideo",
    "RequestBudget",
    "RetryPolicy",
    "ServerError",
    "SessionClosedError",
    "StateChange",
    "SubmissionUncertainError",
    "Subscription",
    "Task",
    "TaskFailedError",
    "TaskState",
    "TransportError",
    "UploadedFile",
    "UpstreamAuthenticationError",
    "Usage",
    "Video",
    "WrongTaskError",
    "__version__",
]
