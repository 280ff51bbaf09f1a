"""Calling tasks back: POST each state change of a task to its ``notify_hook``.

A ticker on the emulator's loop notices state changes (the state is a function of the
clock, so nothing else would) and delivers each one, retried ``callback_attempts`` times.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout

from luma_async import _clock
from luma_async.testing._emulator.state import CallbackDelivery, EmulatorState
from luma_async.testing._emulator.tasks import FINAL, EmulatedTask


class Callbacks(EmulatorState):
    """The callback half of :class:`LumaEmulator`: records in :attr:`callbacks`."""

    def _ensure_ticker(self) -> None:
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(
                self._tick(), name="luma-emulator-callbacks"
            )

    async def _tick(self) -> None:
        """Notice state changes of tasks with a ``notify_hook`` and call them back."""
        while True:
            await asyncio.sleep(self.callback_tick)
            waiting = [
                task
                for task in list(self.tasks.values())
                if task.notify_hook is not None and task.notified_state not in FINAL
            ]
            if not waiting:
                return  # started again by the next task with a hook
            for task in waiting:
                self._notice(task)

    def _notice(self, task: EmulatedTask) -> None:
        body = self._render(task, read=False)
        if body["state"] == task.notified_state:
            return
        task.notified_state = body["state"]
        hook = task.notify_hook
        assert hook is not None
        for _ in range(1 + max(self.callback_duplicates, 0)):
            delivery = asyncio.get_running_loop().create_task(
                self._deliver(hook, task.id, body["state"], self._wrap(body))
            )
            self._deliveries.add(delivery)
            delivery.add_done_callback(self._deliveries.discard)

    async def _deliver(self, url: str, task_id: str, state: str, body: Any) -> None:
        if self._client is None:
            self._client = ClientSession(timeout=ClientTimeout(total=10))
        for attempt in range(1, self.callback_attempts + 1):
            status: int | None = None
            try:
                async with self._client.post(url, json=body) as response:
                    status = response.status
                    await response.read()
            except (ClientError, asyncio.TimeoutError, OSError):
                status = None
            self.callbacks.append(
                CallbackDelivery(url, task_id, state, status, attempt, _clock.monotonic(), body)
            )
            if status == 200:
                return
            if attempt < self.callback_attempts:
                await _clock.sleep(self.callback_retry_seconds * self.time_scale)

    async def _stop_callbacks(self) -> None:
        """Cancel the ticker and the deliveries in flight; close the client."""
        background = [t for t in (self._ticker, *self._deliveries) if t is not None]
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        self._ticker = None
        self._deliveries.clear()
        if self._client is not None:
            await self._client.close()
            self._client = None
