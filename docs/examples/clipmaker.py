"""The application under test in the testing how-to: it makes a clip, optionally extended."""

from luma_async import LumaSession, PollPolicy


async def make_clip(
    prompt: str, *, extend_with: str | None = None, poll: PollPolicy | None = None
) -> str:
    """Generate a clip (and extend it once) and return the finished video's link."""
    async with LumaSession(poll=poll) as luma:  # LUMA_API_KEY / LUMA_BASE_URL
        task = await luma.generate(prompt, aspect_ratio="16:9")
        done = await luma.wait(task.id, first=task)
        if extend_with is not None:
            extension = await luma.extend(done.id, extend_with)
            done = await luma.wait(extension.id, first=extension)
        return done.video.best_url
