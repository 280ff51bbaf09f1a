"""The options the ``luma-async`` commands share, each value checked while the line is read.

The option types (seconds, image, writable file), and the connection options (``--api-key``,
``--base-url``, ``--allow-insecure-http``) accepted before or after the sub-command.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from luma_async import _inputs
from luma_async._errors import InputError
from luma_async._models import ImageInput
from luma_async._session import LumaSession

# -- option types: each value is checked while the command line is read -------------------


def check_seconds(_ctx: click.Context, param: click.Parameter, value: float | None) -> float | None:
    """A positive, finite number of seconds (``0``, ``-1``, ``nan`` and ``inf`` are refused)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"must be a positive number of seconds, not {value}", param=param)
    return value


def check_image(
    _ctx: click.Context, param: click.Parameter, value: str | None
) -> ImageInput | None:
    """An http(s) URL, a ``data:`` URI, or an image file that exists and can be read."""
    if value is None or value.startswith(("http://", "https://", "data:")):
        return value
    path = Path(value)
    if not path.is_file():
        raise click.BadParameter(f"no such image file: {path}", param=param)
    if not os.access(path, os.R_OK):
        raise click.BadParameter(f"cannot read image file: {path}", param=param)
    return path


def check_writable_file(path: Path, what: str) -> None:
    """``path`` can be created or overwritten: its folder exists and is writable."""
    if path.is_dir():
        raise click.BadParameter(f"{path} is a directory, not a file", param_hint=what)
    folder = path.parent
    if not folder.is_dir():
        raise click.BadParameter(f"folder {folder} does not exist (for {path})", param_hint=what)
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise click.BadParameter(f"cannot write {path}", param_hint=what)


# -- connection options: before or after the sub-command ------------------------------------


class CliContext:
    def __init__(self, api_key: str | None, base_url: str | None, insecure: bool) -> None:
        self.api_key = api_key
        self.base_url = base_url
        self.insecure = insecure

    def check(self) -> None:
        """Refuse a missing key or an insecure base URL in the command line's words."""
        key = self.api_key if self.api_key is not None else os.environ.get("LUMA_API_KEY")
        if not key or not key.strip():
            raise InputError("no API key: pass --api-key KEY or set LUMA_API_KEY")
        url = self.base_url or os.environ.get("LUMA_BASE_URL") or "https://api.gpt.ge"
        try:
            _inputs.check_base_url(url, allow_insecure=True)
        except InputError as exc:
            raise InputError(f"--base-url / LUMA_BASE_URL: {exc}") from exc
        if not self.insecure:
            try:
                _inputs.check_base_url(url, allow_insecure=False)
            except InputError:
                raise InputError(
                    f"base URL {url} is plain http to a non-loopback host: the API key would "
                    "travel unencrypted. Use https, or for an emulator or gateway on your LAN "
                    "pass --allow-insecure-http (or set LUMA_ALLOW_INSECURE_HTTP=1)"
                ) from None

    def session(self, **kwargs: Any) -> LumaSession:
        self.check()
        return LumaSession(
            self.api_key, base_url=self.base_url, allow_insecure_http=self.insecure, **kwargs
        )


def _store(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def callback(ctx: click.Context, _param: click.Parameter, value: Any) -> None:
        if value is not None and value is not False:
            setattr(ctx.ensure_object(CliContext), name, value)

    return callback


def connection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--api-key``, ``--base-url`` and ``--allow-insecure-http`` on a sub-command too."""
    command = click.option(
        "--allow-insecure-http",
        is_flag=True,
        default=None,
        expose_value=False,
        callback=_store("insecure"),
        help="Allow a plain-http base URL off this machine (an emulator or gateway on a LAN).",
    )(command)
    command = click.option(
        "--base-url",
        expose_value=False,
        callback=_store("base_url"),
        help="API base URL (default: $LUMA_BASE_URL or https://api.gpt.ge).",
    )(command)
    return click.option(
        "--api-key",
        expose_value=False,
        callback=_store("api_key"),
        help="API key (default: $LUMA_API_KEY).",
    )(command)


pass_context = click.make_pass_decorator(CliContext, ensure=True)
json_option = click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
timeout_option = click.option(
    "--timeout",
    type=float,
    callback=check_seconds,
    default=900.0,
    show_default=True,
    help="Give up following after SECONDS (a positive number).",
)


__all__ = [
    "CliContext",
    "check_image",
    "check_seconds",
    "check_writable_file",
    "connection_options",
    "json_option",
    "pass_context",
    "timeout_option",
]
