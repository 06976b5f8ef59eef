"""The official SDKs, configured only by HTTPS_PROXY and CA trust variables, in every mode."""

from __future__ import annotations

import pytest

from .conftest import ProxyFactory, run_sdk_clients
from .fakes import Upstream

pytestmark = pytest.mark.slow


async def test_passthrough_reaches_the_upstream_unchanged(proxy_factory: ProxyFactory, upstream: Upstream) -> None:
    proxy = await proxy_factory(mode=None, **{})
    proxy.state.mode_override = __import__("llmsim.api.profile", fromlist=["Mode"]).Mode.PASSTHROUGH
    result = await run_sdk_clients(proxy)
    assert result["openai"] == "upstream says hi"
    assert result["anthropic"] == "upstream says hi"
    assert result["openai_stream"] == "".join(f"t{i} " for i in range(upstream.tokens))
    assert result["anthropic_stream"] == "".join(f"t{i} " for i in range(upstream.tokens))
    assert len(upstream.requests) == 4
