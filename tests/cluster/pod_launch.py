"""The container "runtime" of the pod runner: `python pod_launch.py SPEC.json` joins the pod's
network namespace, enters a private mount namespace, bind-mounts the container's volumes at their
`mountPath`s and the pod's hosts file over /etc/hosts, drops to `runAsUser`/`runAsGroup` when the
container asks, and execs the container's command (so its PID is the container's). Everything
else (the root filesystem, the interpreter, the checkout) is the host's: the image map decides
which host programs an image stands for. Mount points that do not exist on the host are created by
the runner beforehand (and removed when it stops), as a runtime creates them in a rootfs.

No cluster DNS: /etc/resolv.conf names 127.0.0.1, where nothing listens on port 53, so a lookup
that /etc/hosts does not answer fails at once instead of timing out.

SPEC: {"netns", "hosts", "resolv", "mounts": [[src, dst, readOnly]...], "argv", "env", "cwd", "uid", "gid"}.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
_libc = ctypes.CDLL(None, use_errno=True)


def mount(source: str | None, target: str, flags: int) -> None:
    if _libc.mount(source.encode() if source else None, target.encode(), None, flags, None) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"mount {source} -> {target}: {os.strerror(errno)}")


def main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    with open(f"/run/netns/{spec['netns']}", "rb") as ns:
        os.setns(ns.fileno(), CLONE_NEWNET)
    os.unshare(CLONE_NEWNS)
    mount(None, "/", MS_REC | MS_PRIVATE)
    mount(spec["hosts"], "/etc/hosts", MS_BIND)
    mount(spec["resolv"], "/etc/resolv.conf", MS_BIND)
    for source, target, read_only in sorted(spec["mounts"], key=lambda m: m[1].count("/")):
        mount(source, target, MS_BIND | MS_REC)
        if read_only:
            mount(None, target, MS_BIND | MS_REMOUNT | MS_RDONLY)
    if spec.get("gid") is not None:
        os.setgroups([])
        os.setgid(int(spec["gid"]))
    if spec.get("uid") is not None:
        os.setuid(int(spec["uid"]))
    os.chdir(spec.get("cwd") or "/")
    argv = spec["argv"]
    try:
        os.execvpe(argv[0], argv, spec["env"])
    except OSError as exc:
        print(f"pod runner: cannot exec {argv[0]!r}: {exc}", file=sys.stderr, flush=True)
        os._exit(127)


if __name__ == "__main__":
    main(sys.argv[1])
