"""The pod runner's image map: an image reference stands for host programs, not a filesystem.

    {"llmsim/sidecar:*": {"path": ["/repo/.venv/bin"], "entrypoint": ["llmsim"]},
     "llmsim-drills/app:*": {"path": [...], "mounts": {"/app": "/repo/examples/drills/app"}}}

`path` is prepended to the container's PATH (so `llmsim` and `python` in a pod spec are the
checkout's), `entrypoint` is the image's ENTRYPOINT for containers without `command`, `mounts`
are directories the image "contains" (bind-mounted read-only), `env` its ENV. Patterns are
fnmatch-style; the first match wins. An image no pattern matches fails its pod (`ErrImagePull`)."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

BASE_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class Image:
    path: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    mounts: Mapping[str, str] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)

    def environment(self) -> dict[str, str]:
        return {"PATH": ":".join([*self.path, BASE_PATH]), **self.env}


class ImageMap:
    def __init__(self, table: Mapping[str, Mapping[str, Any]]) -> None:
        self.table = {
            pattern: Image(
                path=tuple(spec.get("path") or ()),
                entrypoint=tuple(spec.get("entrypoint") or ()),
                mounts=dict(spec.get("mounts") or {}),
                env=dict(spec.get("env") or {}),
            )
            for pattern, spec in table.items()
        }

    def resolve(self, image: str) -> Image | None:
        for pattern, found in self.table.items():
            if fnmatch.fnmatchcase(image, pattern):
                return found
        return None

    def unknown_message(self, image: str) -> str:
        known = ", ".join(self.table) or "none"
        return f"image {image!r} is not in the pod runner's image map (known: {known})"
