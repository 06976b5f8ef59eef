"""Runs mitmproxy's proxy server (embedded: `DumpMaster` + `Options`) in the proxy's event loop,
with `LlmsimAddon` handing intercepted requests to the data path. Signs with the llmsim CA."""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass

from mitmproxy import options
from mitmproxy.tools.dump import DumpMaster

from llmsim.proxy.ca import BASENAME, CertificateAuthority
from llmsim.proxy.mitm_addon import LlmsimAddon
from llmsim.proxy.state import ProxyState

Address = tuple[str, int]


@dataclass
class MitmEngine:
    master: DumpMaster
    task: asyncio.Task[None]
    address: Address

    async def stop(self) -> None:
        self.master.shutdown()  # type: ignore[no-untyped-call]
        try:
            await asyncio.wait_for(self.task, 10)
        except (TimeoutError, asyncio.CancelledError):
            self.task.cancel()


def _share_ca(ca: CertificateAuthority) -> None:
    """mitmproxy looks for `mitmproxy-ca.pem` in its confdir: give it our CA (same key, same cert)."""
    for suffix in ("ca.pem", "dhparam.pem"):
        ours, theirs = ca.directory / f"{BASENAME}-{suffix}", ca.directory / f"mitmproxy-{suffix}"
        if ours.exists() and (not theirs.exists() or theirs.read_bytes() != ours.read_bytes()):
            shutil.copyfile(ours, theirs)
            os.chmod(theirs, 0o600)


async def start(
    opts: object, state: ProxyState, ca: CertificateAuthority, datapath_port: int, token: str
) -> MitmEngine:
    from llmsim.proxy.runner import ProxyOptions

    assert isinstance(opts, ProxyOptions)
    _share_ca(ca)
    host, port = opts.listen
    mopts = options.Options(
        listen_host=host,
        listen_port=port,
        confdir=str(ca.directory),
        connection_strategy="lazy",
        upstream_cert=False,
    )
    master = DumpMaster(mopts, with_termlog=False, with_dumper=False)
    master.addons.add(LlmsimAddon(state, datapath_port, token))  # type: ignore[no-untyped-call]
    master.options.update(llmsim_intercept=list(opts.intercept))  # type: ignore[no-untyped-call]
    task = asyncio.create_task(master.run())
    proxyserver = master.addons.get("proxyserver")  # type: ignore[no-untyped-call]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while not proxyserver.listen_addrs():
        if task.done():
            task.result()
            raise RuntimeError("mitmproxy stopped during start-up")
        if loop.time() > deadline:
            raise RuntimeError("mitmproxy did not start listening within 10 s")
        await asyncio.sleep(0.02)
    bound = proxyserver.listen_addrs()[0]
    return MitmEngine(master, task, (str(bound[0]), int(bound[1])))
