"""Scrubbing the API key from whatever leaves the library: bytes, text, JSON, exceptions."""

from __future__ import annotations

import contextlib
import re
from typing import Any

from luma_async._errors import APIError, LumaError, is_json_list, is_json_object

__all__ = ["Redactor"]


_MIN_SCRUBBED = 8  # a shorter "key" is a test stub; hunting it in every text would mangle words


class Redactor:
    """Removes one secret from whatever leaves the library, in every form a server may echo.

    The forms: the key itself, JSON-escaped (``\\u0073k-...``, any mix of escaped and plain
    characters) and URL-encoded (``%73k%2D...``), in raw bytes, decoded text, JSON values,
    headers and exceptions (message, ``detail``, ``body``, ``headers``, ``answer``, along
    the chain of causes).  Each occurrence becomes ``***``.
    """

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._raw = secret.encode()
        self._active = len(secret) >= _MIN_SCRUBBED
        pattern = "".join(_char_forms(char) for char in secret)
        self._text = re.compile(pattern)
        self._bytes = re.compile(pattern.encode())

    def bytes(self, raw: bytes) -> bytes:
        if not self._active:
            return raw.replace(self._raw, b"***") if self._raw and self._raw in raw else raw
        if b"%" in raw or b"\\" in raw:
            return self._bytes.sub(b"***", raw)
        return raw.replace(self._raw, b"***") if self._raw in raw else raw

    def text(self, text: str) -> str:
        if not self._active:
            return text
        if "%" in text or "\\" in text:
            return self._text.sub("***", text)
        return text.replace(self._secret, "***") if self._secret in text else text

    def value(self, value: Any) -> Any:
        """A decoded JSON value (or any str/bytes), with the secret removed."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes):
            return self.bytes(value)
        if is_json_object(value):
            return {self.text(key): self.value(item) for key, item in value.items()}
        if is_json_list(value):
            return [self.value(item) for item in value]
        return value

    def error(self, exc: BaseException) -> None:
        """Scrub ``exc`` and every exception chained to it, in place."""
        if not self._active:
            return
        seen: set[int] = set()
        link: BaseException | None = exc
        while link is not None and id(link) not in seen:
            seen.add(id(link))
            with contextlib.suppress(AttributeError, TypeError):  # an odd foreign exception
                link.args = tuple(self.value(arg) for arg in link.args)
            if isinstance(link, LumaError):
                for name in ("detail", "code", "body", "answer"):
                    if hasattr(link, name):
                        setattr(link, name, self.value(getattr(link, name)))
                if isinstance(link, APIError):
                    link.headers = {self.text(k): self.text(v) for k, v in link.headers.items()}
            link = link.__cause__ or link.__context__


def _hex_digits(number: int, width: int) -> str:
    digits = f"{number:0{width}x}"
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in digits)


def _char_forms(char: str) -> str:
    """A regex for one character of the secret: as is, JSON-escaped or percent-encoded."""
    forms = [re.escape(char), "".join("%" + _hex_digits(b, 2) for b in char.encode())]
    if ord(char) < 0x10000:
        forms.append(r"\\u" + _hex_digits(ord(char), 4))
    if char == "/":
        forms.append(r"\\/")
    return "(?:" + "|".join(forms) + ")"
