"""How-to: wait for a task and save its video, with a progress line."""

import asyncio
import sys
from pathlib import Path

from luma_async import LumaSession


def progress(received: int, total: int | None) -> None:
    share = f" ({100 * received / total:.0f}%)" if total else ""
    print(f"\r{received:>12,} bytes{share}", end="", flush=True)


async def main(task_id: str, folder: Path) -> Path:
    async with LumaSession() as luma:
        task = await luma.wait(task_id)  # a finished task: its video exists
        # A directory as destination: the file is named <task id>.mp4.  watermark=False asks
        # the service for the clean link first.  A broken transfer resumes where it stopped.
        path = await luma.download(task, folder, watermark=False, progress=progress)
    print(f"\nsaved {path}")
    return path


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], Path(sys.argv[2] if len(sys.argv) > 2 else ".")))
