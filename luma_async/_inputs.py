"""Checking arguments before any request is sent, and building request bodies.

Every check raises :class:`InputError` with a message that says what to fix.  Nothing here
does network I/O; reading an image file is the only I/O.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from luma_async._errors import InputError
from luma_async._models import ExtendRequest, GenerateRequest
from luma_async._validators import bool_, check, one_of, optional

__all__ = [
    "ASPECT_RATIOS",
    "MAX_IMAGE_BYTES",
    "check_base_url",
    "check_list",
    "check_task_id",
    "extend_body",
    "generate_body",
    "image_value",
]

ASPECT_RATIOS = ("1:1", "4:3", "3:4", "16:9", "9:16", "21:9", "9:21")
RESOLUTIONS = ("540p", "720p", "1080p", "4k")
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_PROMPT_CHARS = 5_000
_TASK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
_DATA_URI = re.compile(r"data:(image/[a-z0-9.+-]+);base64,(.*)", re.IGNORECASE | re.DOTALL)
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


def check_task_id(task_id: object, *, name: str = "task_id") -> str:
    if not isinstance(task_id, str):
        raise InputError(f"{name} must be a string (the task's id), not {type(task_id).__name__}")
    if not _TASK_ID.fullmatch(task_id):
        shown = task_id if len(task_id) <= 60 else task_id[:57] + "..."
        raise InputError(
            f"{name} {shown!r} is not a task id: use the 'id' of a task the service returned "
            "(letters, digits, '-', '_', '.', ':'; at most 128 characters)"
        )
    return task_id


def check_prompt(prompt: object) -> str:
    if not isinstance(prompt, str):
        raise InputError(f"user_prompt must be a string, not {type(prompt).__name__}")
    if not prompt.strip():
        raise InputError("user_prompt is empty: describe what the video should show")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise InputError(
            f"user_prompt has {len(prompt)} characters; keep it to {MAX_PROMPT_CHARS} or fewer"
        )
    if "\x00" in prompt:
        raise InputError("user_prompt contains a NUL character; remove it")
    return prompt


_BOOL = bool_()
_OPTIONAL_BOOL = optional(_BOOL, what="True, False or None")
_ASPECT_RATIO = optional(one_of(*ASPECT_RATIOS))
_RESOLUTION = optional(one_of(*RESOLUTIONS))


def check_bool(value: object, name: str) -> bool:
    return check(value, name, _BOOL)


def _check_optional_bool(value: object, name: str) -> bool | None:
    return check(value, name, _OPTIONAL_BOOL)


def _check_text(value: object, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > 200:
        raise InputError(f"{name} must be a short non-empty string, not {value!r}")
    return value


def _is_loopback(host: str) -> bool:
    """``host`` as ``urlsplit(...).hostname`` gives it: lower case, an IPv6 address unbracketed."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_http_url(
    value: object, name: str, *, allow_data: bool = False, max_bytes: int = MAX_IMAGE_BYTES
) -> str:
    """An absolute http(s) URL with a host (or, with ``allow_data``, a data: URI holding at
    most ``max_bytes`` of image)."""
    if not isinstance(value, str):
        raise InputError(f"{name} must be a URL string, not {type(value).__name__}")
    if allow_data and value[:5].lower() == "data:":
        return check_data_uri(value, name, max_bytes=max_bytes)
    try:
        parts = urlsplit(value)
        host = parts.hostname
        _ = parts.port  # raises ValueError for a bad port
    except ValueError as exc:
        raise InputError(f"{name} {value[:80]!r} is not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not host or any(c.isspace() for c in value):
        kinds = "an http(s) URL or a data: URI" if allow_data else "an http(s) URL"
        raise InputError(f"{name} must be {kinds} with a host name; got {value[:80]!r}")
    return value


def check_data_uri(value: str, name: str, *, max_bytes: int = MAX_IMAGE_BYTES) -> str:
    """A well-formed base64 image data: URI whose image has at most ``max_bytes`` bytes."""
    match = _DATA_URI.fullmatch(value)
    if match is None:
        raise InputError(
            f"{name} is a data: URI but not 'data:image/<type>;base64,<data>'; "
            "pass a pathlib.Path or bytes to have luma-async encode the image"
        )
    payload = match.group(2)
    if not payload:
        raise InputError(f"{name} is a data: URI with no image in it")
    size = _decoded_size(payload)  # measured before decoding: a huge payload costs nothing
    if size > max_bytes:
        raise InputError(
            f"{name} data: URI has {size} bytes; the limit is {max_bytes}: shrink the image"
        )
    try:
        base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InputError(f"{name} is a data: URI whose base64 payload is invalid: {exc}") from exc
    return value


def _decoded_size(payload: str) -> int:
    """The bytes a base64 payload decodes to (exact when it is valid, padding included)."""
    padding = len(payload) - len(payload.rstrip("="))
    return len(payload) * 3 // 4 - min(padding, 2)


def _sniff(data: bytes) -> str | None:
    for signature, mime in _SIGNATURES:
        if data.startswith(signature):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_value(value: object, name: str, *, max_bytes: int = MAX_IMAGE_BYTES) -> str | None:
    """The wire form of an image argument: URLs pass, files and bytes become data URIs."""
    if value is None:
        return None
    if isinstance(value, str):
        return check_http_url(value, name, allow_data=True, max_bytes=max_bytes)
    if isinstance(value, Path):
        try:
            size = value.stat().st_size
            if size > max_bytes:
                raise InputError(
                    f"{name} file {value} has {size} bytes; the limit is {max_bytes}: "
                    "shrink the image"
                )
            data = value.read_bytes()
        except OSError as exc:
            raise InputError(f"{name} file {value} cannot be read: {exc.strerror or exc}") from exc
        where = f"file {value}"
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(cast("bytes | bytearray | memoryview", value))
        where = "bytes"
    else:
        raise InputError(
            f"{name} must be an http(s) URL, a data: URI, a pathlib.Path or bytes, "
            f"not {type(value).__name__}"
        )
    if not data:
        raise InputError(f"{name} {where} is empty")
    if len(data) > max_bytes:
        raise InputError(
            f"{name} {where} has {len(data)} bytes; the limit is {max_bytes}: shrink it"
        )
    mime = _sniff(data)
    if mime is None:
        raise InputError(f"{name} {where} is not a PNG, JPEG, GIF, WebP or BMP image")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _common(
    request: GenerateRequest | ExtendRequest,
    body: dict[str, Any],
    max_image_bytes: int,
    hook: str | None,
) -> dict[str, Any]:
    expand = _check_optional_bool(request.expand_prompt, "expand_prompt")
    if expand is not None:
        body["expand_prompt"] = expand
    for key in ("image_url", "image_end_url"):
        image = image_value(getattr(request, key), key, max_bytes=max_image_bytes)
        if image is not None:
            body[key] = image
    notify_hook = hook if request.notify_hook is None else request.notify_hook
    if notify_hook is not None:
        body["notify_hook"] = check_http_url(notify_hook, "notify_hook")
    return body


def generate_body(
    request: GenerateRequest, *, max_image_bytes: int = MAX_IMAGE_BYTES, hook: str | None = None
) -> dict[str, Any]:
    """The JSON body of a generation; ``hook`` is the ``notify_hook`` sent when the request
    has none (a callback receiver's: only the body carries it, never an error's request)."""
    body: dict[str, Any] = {"user_prompt": check_prompt(request.user_prompt)}
    aspect = check(request.aspect_ratio, "aspect_ratio", _ASPECT_RATIO)
    if aspect is not None:
        body["aspect_ratio"] = aspect
    loop = _check_optional_bool(request.loop, "loop")
    if loop is not None:
        body["loop"] = loop
    resolution = check(request.resolution, "resolution", _RESOLUTION)
    if resolution is not None:
        body["resolution"] = resolution
    model = _check_text(request.model_name, "model_name")
    if model is not None:
        body["model_name"] = model
    duration = check_duration(request.duration)
    if duration is not None:
        body["duration"] = duration
    return _common(request, body, max_image_bytes, hook)


_MAX_DURATION = 3600
_DURATION = re.compile(r"\s*(\d{1,4})\s*(s|sec|secs|seconds)?\s*", re.IGNORECASE)


def check_duration(value: object) -> str | None:
    """``duration`` as users write it (``5``, ``"5"``, ``"5s"``) in the wire form ``"5s"``."""
    if value is None:
        return None
    seconds: int | None = None
    if isinstance(value, bool):
        seconds = None
    elif isinstance(value, int):
        seconds = value
    elif isinstance(value, float) and value.is_integer():
        seconds = int(value)
    elif isinstance(value, str) and (match := _DURATION.fullmatch(value)) is not None:
        seconds = int(match[1])
    if seconds is None or not 1 <= seconds <= _MAX_DURATION:
        raise InputError(
            f"duration must be a whole number of seconds from 1 to {_MAX_DURATION} (5) or a "
            f"string like '5s', not {value!r}"
        )
    return f"{seconds}s"


def extend_body(
    request: ExtendRequest, *, max_image_bytes: int = MAX_IMAGE_BYTES, hook: str | None = None
) -> dict[str, Any]:
    """The JSON body of an extension (``hook`` as for :func:`generate_body`)."""
    check_task_id(request.task_id)
    body: dict[str, Any] = {"user_prompt": check_prompt(request.user_prompt)}
    return _common(request, body, max_image_bytes, hook)


def check_list(values: Iterable[str], name: str) -> list[str]:
    """A non-empty list (or other iterable, not a string) of ``name``, as a list."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise InputError(
            f"{name} must be a list (or other iterable) of strings, not {type(values).__name__}"
        )
    listed = list(values)
    if not listed:
        raise InputError(f"{name} is empty")
    return listed


def check_base_url(value: object, *, allow_insecure: bool) -> str:
    """The API's base URL: https, or plain http only to loopback unless explicitly allowed.

    Credentials in it (``user:pass@``) are refused, and never shown in the message.
    """
    if isinstance(value, str) and "@" in _netloc(value):
        raise InputError(
            "base_url must not carry credentials (user:password@host): the API key is the "
            "only credential, sent as a bearer token. Remove the part before '@' from the host"
        )
    url = check_http_url(value, "base_url")
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise InputError(f"base_url must not carry a query or fragment; got {url!r}")
    if parts.scheme == "http" and not allow_insecure and not _is_loopback(parts.hostname or ""):
        raise InputError(
            f"base_url {url!r} is plain http to a non-loopback host: the API key would travel "
            "unencrypted. Use https, or pass allow_insecure_http=True if you really mean it"
        )
    return url.rstrip("/")


def _netloc(url: str) -> str:
    """The authority part of ``url`` (``user:pass@host:port``), however malformed the rest."""
    rest = url.split("://", 1)[1] if "://" in url else url
    for end in "/?#":
        rest = rest.split(end, 1)[0]
    return rest
