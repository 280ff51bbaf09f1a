"""A session's options as one frozen value: each declares its own check.

:class:`LumaSession` builds a :class:`SessionOptions` from its arguments and reads everything
from it.  A missing key or base URL falls back to the ``LUMA_API_KEY`` and ``LUMA_BASE_URL``
environment variables (then to :data:`DEFAULT_BASE_URL`).  A bad argument is an
:class:`InputError` before anything is opened; checks run in field order.
"""

from __future__ import annotations

import os

import aiohttp
import attrs

from luma_async import _inputs
from luma_async._errors import InputError
from luma_async._policy import PollPolicy, RequestBudget, RetryPolicy
from luma_async._validators import (
    SECONDS,
    bool_,
    instance_of,
    number_between,
    optional,
    whole,
)

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_MAX_BYTES", "SessionOptions"]

DEFAULT_BASE_URL = "https://api.gpt.ge"
#: The most a download writes unless told otherwise: far above any generated clip.  Here, not
#: in the download modules, so that ``LumaSession.download``'s signature does not load them.
DEFAULT_MAX_BYTES = 2 * 1024**3


def _api_key(_: object, __: attrs.Attribute[str], key: str) -> None:
    if not (key.isascii() and key.isprintable()) or " " in key:
        raise InputError(
            "the API key contains whitespace, control or non-ASCII characters; "
            "check how it was copied"
        )


def _base_url(options: SessionOptions, _: attrs.Attribute[str], url: str) -> None:
    # declared after allow_insecure_http, so that one is checked first
    _inputs.check_base_url(url, allow_insecure=options.allow_insecure_http)


def _key_or_environment(api_key: str | None) -> str:
    key = api_key if api_key is not None else os.environ.get("LUMA_API_KEY")
    if not isinstance(key, str) or not key.strip():  # the first field: the first refusal
        raise InputError(
            "no API key: pass api_key=... or set the LUMA_API_KEY environment variable"
        )
    return key


def _url_or_environment(base_url: str | None) -> str:
    if base_url is None:
        base_url = os.environ.get("LUMA_BASE_URL") or DEFAULT_BASE_URL
    return base_url.rstrip("/") if isinstance(base_url, str) else base_url


@attrs.frozen(kw_only=True)
class SessionOptions:
    """Everything a :class:`LumaSession` was configured with, checked once."""

    api_key: str = attrs.field(
        default=None, repr=False, converter=_key_or_environment, validator=_api_key
    )  # never shown
    session: aiohttp.ClientSession | None = attrs.field(
        default=None,
        repr=False,
        validator=optional(instance_of(aiohttp.ClientSession, "an aiohttp.ClientSession")),
    )
    timeout: float = attrs.field(default=60.0, validator=SECONDS)
    retry: RetryPolicy | None = attrs.field(
        default=None, validator=optional(instance_of(RetryPolicy))
    )
    poll: PollPolicy | None = attrs.field(default=None, validator=optional(instance_of(PollPolicy)))
    budget: RequestBudget | None = attrs.field(
        default=None, validator=optional(instance_of(RequestBudget))
    )
    max_image_bytes: int = attrs.field(
        default=_inputs.MAX_IMAGE_BYTES,
        validator=whole(1, what="a whole number of bytes of at least 1"),
    )
    allow_insecure_http: bool = attrs.field(default=False, validator=bool_())
    batch_refresh: bool | None = attrs.field(default=None, validator=optional(bool_()))
    batch_window: float = attrs.field(
        default=0.05, validator=number_between(0, 60, "a number of seconds from 0 to 60")
    )
    base_url: str = attrs.field(default=None, converter=_url_or_environment, validator=_base_url)
