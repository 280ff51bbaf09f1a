"""How-to: bring your own aiohttp.ClientSession (shared pool, tracing, proxies...)."""

import asyncio
import sys

import aiohttp

from luma_async import LumaSession


async def main(prompt: str) -> tuple[str, int, int]:
    requests = 0

    async def count(*_: object) -> None:
        nonlocal requests
        requests += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(count)
    connector = aiohttp.TCPConnector(limit=20, ttl_dns_cache=300)
    # No Authorization header or auth= here: luma-async adds the key to its own API
    # requests only, and refuses a session that would send credentials to the video host.
    async with aiohttp.ClientSession(connector=connector, trace_configs=[trace]) as http:
        async with LumaSession(session=http) as luma:
            task = await luma.generate(prompt)
            done = await luma.wait(task.id, first=task)
        # The LumaSession is closed; the aiohttp session it was lent is not.
        async with http.get(done.video.url) as response:
            size = len(await response.read())
    print(f"{done.id}: {size} bytes, {requests} HTTP requests")
    return done.id, size, requests


if __name__ == "__main__":
    asyncio.run(main(" ".join(sys.argv[1:]) or "a red fox in snow"))
