"""How-to: a small web app that streams a video's progress to the browser (server-sent events).

Run it with ``python sse_app.py`` (LUMA_API_KEY and LUMA_BASE_URL set, or against
``luma-async emulator``) and open http://127.0.0.1:8080/.
"""

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from luma_async import LumaError, LumaSession, TaskFailedError

LUMA = web.AppKey("luma", LumaSession)

PAGE = """<!doctype html>
<title>luma-async live</title>
<form id="new"><input name="prompt" value="a red fox in snow" size="40"><button>Go</button></form>
<pre id="log"></pre>
<script>
const log = (line) => { document.getElementById("log").textContent += line + "\\n"; };
document.getElementById("new").onsubmit = async (event) => {
  event.preventDefault();
  const answer = await fetch("/videos", {method: "POST", body: new FormData(event.target)});
  const {id, events} = await answer.json();
  const source = new EventSource(events);
  source.addEventListener("state", (e) => log(id + " " + JSON.parse(e.data).state));
  for (const end of ["done", "failed", "error"]) {  // closing stops the browser reconnecting
    source.addEventListener(end, (e) => { log(end + " " + e.data); source.close(); });
  }
};
</script>
"""


async def luma_session(app: web.Application) -> AsyncIterator[None]:
    """One LumaSession for the whole app, closed when the app stops."""
    async with LumaSession() as luma:
        app[LUMA] = luma
        yield


async def index(_request: web.Request) -> web.Response:
    return web.Response(text=PAGE, content_type="text/html")


async def create(request: web.Request) -> web.Response:
    form = await request.post()
    prompt = str(form.get("prompt", "")).strip()
    if not prompt:
        raise web.HTTPBadRequest(text="a prompt is needed")
    task = await request.app[LUMA].generate(prompt)
    return web.json_response({"id": task.id, "events": f"/videos/{task.id}/events"}, status=201)


async def send(response: web.StreamResponse, event: str, data: dict[str, Any]) -> None:
    await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())


async def events(request: web.Request) -> web.StreamResponse:
    """The task's changes as server-sent events, then one final done/failed/error event."""
    task_id = request.match_info["task_id"]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    # Every browser watching the same task shares one poller; aclosing() stops following
    # as soon as this handler ends (a browser that went away ends it with an error).
    async with contextlib.aclosing(request.app[LUMA].poll(task_id)) as changes:
        try:
            async for change in changes:
                await send(response, "state", {"state": str(change.state), "polls": change.polls})
                if change.finished:  # the last change: its video is there
                    await send(response, "done", {"video": change.finished.video.url})
        except TaskFailedError as exc:
            await send(response, "failed", {"reason": exc.task.failure_reason})
        except LumaError as exc:
            await send(response, "error", {"message": str(exc)})
    return response


def make_app() -> web.Application:
    app = web.Application()
    app.cleanup_ctx.append(luma_session)
    app.router.add_get("/", index)
    app.router.add_post("/videos", create)
    app.router.add_get("/videos/{task_id}/events", events)
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=8080)
