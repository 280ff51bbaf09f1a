"""How-to: extend many videos at once, resume after a crash, download every result.

Run it twice with the same work directory: the second run reads every result from the
journal and submits nothing.
"""

import asyncio
import sys
from pathlib import Path

from luma_async import BatchResult, ExtendRequest, Journal, LumaSession

PROMPTS = ("the camera pulls back", "snow starts to fall")


async def main(
    parent_ids: list[str], workdir: Path, *, prompts: tuple[str, ...] = PROMPTS
) -> list[BatchResult]:
    requests = [ExtendRequest(parent, prompt) for parent in parent_ids for prompt in prompts]
    videos = workdir / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    results: list[BatchResult] = []
    async with LumaSession() as luma:
        batch = luma.extend_many(
            requests,
            concurrency=4,  # at most four tasks submitted and not yet finished
            journal=workdir / "batch.sqlite",  # every step on disk before it happens
            download_to=videos,  # each video is saved before its result is yielded
        )
        async with batch:  # leaving early cancels the workers; batch.in_flight says what ran
            async for result in batch:
                if result.ok:
                    print(f"{result.parent_id} -> {result.task_id}: {result.path}")
                else:
                    print(f"{result.parent_id}: {type(result.error).__name__}: {result.error}")
                results.append(result)
    return results


def uncertain_requests(journal_path: Path) -> list[str]:
    """What a crash left undecided: requests that may or may not have created a task."""
    with Journal(journal_path) as journal:
        return [f"{entry.key}: {entry.request['user_prompt']}" for entry in journal.uncertain()]


if __name__ == "__main__":
    asyncio.run(main(sys.argv[2:], Path(sys.argv[1])))
