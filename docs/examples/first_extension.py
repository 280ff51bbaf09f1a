"""Tutorial: extend a finished video and follow the new task until its video exists."""

import asyncio
import sys

from luma_async import LumaSession


async def main(task_id: str, prompt: str = "the camera pulls back to reveal the city") -> str:
    async with LumaSession() as luma:  # key and address from LUMA_API_KEY / LUMA_BASE_URL
        extension = await luma.extend(task_id, prompt)
        print(f"extending {task_id}: new task {extension.id}")
        async for change in luma.poll(extension.id, first=extension):
            print(f"{change.state:<10} after {change.elapsed:5.1f}s, {change.polls} polls")
            if change.finished:  # poll() ends with the change that brings the video
                return change.finished.video.url
    raise AssertionError("unreachable: poll() ends with the video, or raises")


if __name__ == "__main__":
    print(asyncio.run(main(sys.argv[1])))
