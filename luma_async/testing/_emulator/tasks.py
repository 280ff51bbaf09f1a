"""A task of the emulator: its state over time and its task object in each task shape.

Pure: no server, no clock, no I/O.  ``elapsed`` is emulated seconds since the task was
created; the caller reads the clock.  :mod:`.shapes` adds the envelopes and dialects.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import attrs

TaskShape = Literal["classic", "artifact", "official"]
#: Where a finished task's stills and raw video are: ``all`` (as the shape has them),
#: ``video`` (the thumbnail only as ``video.thumbnail``; ``last_frame``/``video_raw`` at the
#: top), ``top`` (all at the top level) or ``artifact`` (all only under ``artifact``).
Media = Literal["all", "video", "top", "artifact"]
TASK_SHAPES: tuple[TaskShape, ...] = ("classic", "artifact", "official")
MEDIA_PLACES: tuple[Media, ...] = ("all", "video", "top", "artifact")
FINAL = frozenset({"completed", "failed"})
_OFFICIAL_STATE = {"pending": "queued", "processing": "dreaming"}
DIMENSIONS = {
    "16:9": (1360, 752),
    "9:16": (752, 1360),
    "1:1": (1024, 1024),
    "4:3": (1168, 880),
    "3:4": (880, 1168),
    "21:9": (1568, 672),
    "9:21": (672, 1568),
}
_ZERO_TIME = "0001-01-01T00:00:00Z"
VIDEO_SECONDS_PER_EXTEND = 5.0


@attrs.define
class EmulatedTask:
    """The emulator's record of one task; tests may read and adjust it.

    ``pending_seconds`` / ``processing_seconds`` are emulated seconds counted from
    ``created_clock``; ``fail_reason`` makes the task end ``failed`` instead of ``completed``;
    ``fail_at`` (emulated seconds after creation) makes it fail earlier.  ``parent_id`` is the
    extended task for an extension.  ``request`` is the JSON body that created it.
    """

    id: str
    prompt: str
    kind: Literal["generate", "extend"]
    request: dict[str, Any]
    created_at: dt.datetime
    created_clock: float
    pending_seconds: float
    processing_seconds: float
    aspect_ratio: str = "16:9"
    parent_id: str | None = None
    fail_reason: str | None = None
    fail_at: float | None = None
    batch_id: str = ""
    video_seconds: float = VIDEO_SECONDS_PER_EXTEND
    completed_reads: int = 0
    notified_state: str | None = None

    @property
    def notify_hook(self) -> str | None:
        hook = self.request.get("notify_hook")
        return hook if isinstance(hook, str) else None

    def state_at(self, elapsed: float) -> str:
        """The state of the task ``elapsed`` emulated seconds after its creation."""
        if self.fail_at is not None and elapsed >= self.fail_at:
            return "failed"
        if elapsed < self.pending_seconds:
            return "pending"
        if elapsed < self.pending_seconds + self.processing_seconds:
            return "processing"
        return "failed" if self.fail_reason is not None else "completed"


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def image_ref(task: EmulatedTask, kind: str, image_base: str) -> dict[str, Any]:
    width, height = DIMENSIONS.get(task.aspect_ratio, DIMENSIONS["16:9"])
    return {"url": f"{image_base}/images/{task.id}/{kind}.png", "width": width, "height": height}


@attrs.frozen
class Links:
    """A task's links, all ``None`` until it completed and its links are out."""

    url: str | None
    thumbnail: dict[str, Any] | None
    last_frame: dict[str, Any] | None


def official_object(
    task: EmulatedTask, state: str, links: Links, failure: str | None
) -> dict[str, Any]:
    """Luma's own API: ``queued``/``dreaming``, the video as the string ``assets.video``."""
    return {
        "id": task.id,
        "generation_type": "video",
        "state": _OFFICIAL_STATE.get(state, state),
        "failure_reason": failure,
        "created_at": iso(task.created_at),
        "assets": {
            "video": links.url,
            "image": links.thumbnail["url"] if links.thumbnail else None,
            "progress_video": None,
        },
        "model": str(task.request.get("model_name") or "ray-2"),
        "request": {"prompt": task.prompt, "aspect_ratio": task.aspect_ratio},
        "version": "emulated",
    }


def classic_object(
    task: EmulatedTask, state: str, links: Links, failure: str | None, estimate: float | None
) -> dict[str, Any]:
    """The first deployments: top-level ``prompt`` and ``fail_reason``."""
    video: dict[str, Any] | None = None
    if links.url is not None:
        width, height = DIMENSIONS.get(task.aspect_ratio, DIMENSIONS["16:9"])
        video = {
            "url": links.url,
            "width": width,
            "height": height,
            "thumbnail": links.thumbnail["url"] if links.thumbnail else None,
            "download_url": f"{links.url}?download=1",
        }
    body: dict[str, Any] = {
        "id": task.id,
        "prompt": task.prompt,
        "state": state,
        "created_at": iso(task.created_at),
        "video": video,
        "liked": None,
        "estimate_wait_seconds": estimate,
        "thumbnail": links.thumbnail,
        "last_frame": links.last_frame,
    }
    if failure is not None:
        body["fail_reason"] = failure
    return body


def artifact_object(
    task: EmulatedTask, state: str, links: Links, failure: str | None, estimate: float | None
) -> dict[str, Any]:
    """Later deployments: ``request``, ``artifact``, ``queue_state``, ``video_raw``."""
    video: dict[str, Any] | None = None
    video_raw: dict[str, Any] | None = None
    if links.url is not None:
        width, height = DIMENSIONS.get(task.aspect_ratio, DIMENSIONS["16:9"])
        video = {"url": links.url, "width": width, "height": height, "thumbnail": links.thumbnail}
        video_raw = {
            "url": f"{links.url}?raw=1",
            "width": width,
            "height": height,
            "duration": task.video_seconds,
        }
    finished = task.created_at + dt.timedelta(
        seconds=task.pending_seconds + task.processing_seconds
    )
    request = {"prompt": task.prompt, "aspect_ratio": task.aspect_ratio}
    request.update({k: v for k, v in task.request.items() if k in ("expand_prompt", "loop")})
    return {
        "id": task.id,
        "state": state,
        "queue_state": "queued" if state == "pending" else None,
        "created_at": iso(task.created_at),
        "batch_id": task.batch_id,
        "liked": None,
        "estimate_wait_seconds": estimate,
        "failure_reason": failure,
        "request": request,
        "video": video,
        "video_raw": video_raw,
        "thumbnail": links.thumbnail,
        "last_frame": links.last_frame,
        "artifact": {
            "video": video,
            "thumbnail": links.thumbnail,
            "video_raw": video_raw,
            "last_frame": links.last_frame,
            "created_at": iso(finished) if links.url is not None else _ZERO_TIME,
        },
    }


def place_media(body: dict[str, Any], media: Media, shape: TaskShape) -> None:
    """Move a rendered task's stills and raw video to where ``media`` says they are."""
    artifact: dict[str, Any] = body.get("artifact") or {}
    shown: dict[str, Any] | None = body.get("video")
    thumbnail: dict[str, Any] | None = body.get("thumbnail") or artifact.get("thumbnail")
    last_frame: dict[str, Any] | None = body.get("last_frame") or artifact.get("last_frame")
    video_raw: dict[str, Any] | None = body.get("video_raw") or artifact.get("video_raw")
    video: dict[str, Any] | None = None
    if shown is not None:
        video = dict(shown)
        video["thumbnail"] = None
        video.pop("download_url", None)
        body["video"] = video
        if video_raw is None and thumbnail is not None:
            video_raw = {
                "url": f"{video['url']}?raw=1",
                "width": video.get("width"),
                "height": video.get("height"),
                "duration": VIDEO_SECONDS_PER_EXTEND,
            }
    for key in ("thumbnail", "last_frame", "video_raw"):
        body.pop(key, None)
    if "artifact" in body:  # only the chosen place keeps them
        body["artifact"] = {
            **artifact,
            "video": video,
            "thumbnail": None,
            "last_frame": None,
            "video_raw": None,
        }
    if media == "video":
        if video is not None and thumbnail is not None:
            video["thumbnail"] = thumbnail["url"] if shape == "classic" else thumbnail
        body["last_frame"] = last_frame
        body["video_raw"] = video_raw
    elif media == "top":
        body["thumbnail"] = thumbnail
        body["last_frame"] = last_frame
        body["video_raw"] = video_raw
    else:  # artifact
        artifact = dict(artifact)
        artifact.update(
            {
                "video": video,
                "thumbnail": thumbnail,
                "last_frame": last_frame,
                "video_raw": video_raw,
            }
        )
        body["artifact"] = artifact
