"""Test doubles: a test CA, a TLS upstream that plays OpenAI and Anthropic with exact timing."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import ssl
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

UPSTREAM_HOSTS = ("api.openai.com", "api.anthropic.com", "localhost", "origin.test")


@dataclass(frozen=True)
class Pki:
    ca_file: Path
    cert_file: Path
    key_file: Path
    ca_fingerprint: bytes
    leaf_fingerprint: bytes

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx


def make_pki(directory: Path, hosts: tuple[str, ...] = UPSTREAM_HOSTS) -> Pki:
    """A throwaway CA and one leaf certificate for `hosts` (plus 127.0.0.1)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llmsim test upstream CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(h) for h in hosts]
    sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = directory / "ca.pem", directory / "leaf.pem", directory / "leaf.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return Pki(
        ca_file, cert_file, key_file, ca.fingerprint(hashes.SHA256()), leaf.fingerprint(hashes.SHA256())
    )


@dataclass
class Upstream:
    """A fake provider. Streams `tokens` chunks, `ttft_s` then `itl_s` apart, by absolute deadlines;
    records the headers of every request and the loop time each chunk was written."""

    ttft_s: float = 0.05
    itl_s: float = 0.02
    tokens: int = 10
    requests: list[dict[str, str]] = field(default_factory=list)
    sent_at: list[list[float]] = field(default_factory=list)
    """Per stream, the loop time each event was written."""
    started_at: list[float] = field(default_factory=list)
    """Per stream, the loop time its schedule started (event k is due `ttft_s + k * itl_s` later)."""
    bodies: list[bytes] = field(default_factory=list)
    """The raw body of every request, in arrival order."""
    port: int = 0

    def app(self) -> web.Application:
        @web.middleware
        async def record_body(request: web.Request, handler: Handler) -> web.StreamResponse:
            self.bodies.append(await request.read())
            return await handler(request)

        app = web.Application(middlewares=[record_body], client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.openai_chat)
        app.router.add_post("/v1/messages", self.anthropic_messages)
        app.router.add_get("/plain", self.plain)
        app.router.add_post("/echo", self.echo)
        app.router.add_post("/v1/gzip/chat/completions", self.gzip_stream)
        return app

    async def plain(self, request: web.Request) -> web.Response:
        self.requests.append(dict(request.headers))
        return web.Response(text="origin says hi")

    async def echo(self, request: web.Request) -> web.Response:
        self.requests.append(dict(request.headers))
        return web.Response(body=await request.read(), content_type="application/octet-stream")

    async def gzip_stream(self, request: web.Request) -> web.StreamResponse:
        """SSE compressed with gzip, flushed after every event (as some gateways do)."""
        self.requests.append(dict(request.headers))
        packer = zlib.compressobj(wbits=31)
        frames = [b'data: {"n":%d}\n\n' % i for i in range(self.tokens)] + [b"data: [DONE]\n\n"]
        loop = asyncio.get_running_loop()
        start = loop.time()
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Content-Encoding": "gzip"}
        )
        times: list[float] = []
        self.sent_at.append(times)
        for i, frame in enumerate(frames):
            delay = start + self.ttft_s + i * self.itl_s - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if i == 0:
                await response.prepare(request)
            await response.write(packer.compress(frame) + packer.flush(zlib.Z_SYNC_FLUSH))
            times.append(loop.time())
        await response.write(packer.flush())
        await response.write_eof()
        return response

    async def _stream(self, request: web.Request, frames: list[bytes]) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.started_at.append(start)
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        times: list[float] = []
        self.sent_at.append(times)
        for i, frame in enumerate(frames):
            due = start + self.ttft_s + i * self.itl_s
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if i == 0:
                await response.prepare(request)
            await response.write(frame)
            times.append(loop.time())
        await response.write_eof()
        return response

    async def openai_chat(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(dict(request.headers))
        try:
            body = json.loads(await request.read())
        except (ValueError, RecursionError):  # as OpenAI answers a body it cannot read
            error = {
                "message": "We could not parse the JSON body of your request.",
                "type": "invalid_request_error",
            }
            return web.json_response({"error": {**error, "param": None, "code": None}}, status=400)
        model = body.get("model", "gpt-4o-mini")
        if not body.get("stream"):
            await asyncio.sleep(self.ttft_s)
            return web.json_response(
                {
                    "id": "chatcmpl-up",
                    "object": "chat.completion",
                    "created": 1,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "upstream says hi"},
                            "finish_reason": "stop",
                            "logprobs": None,
                        }
                    ],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 3, "total_tokens": 6},
                }
            )
        frames = []
        for i in range(self.tokens):
            delta = {"role": "assistant", "content": f"t{i} "} if i == 0 else {"content": f"t{i} "}
            chunk = {
                "id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": None, "logprobs": None}],
            }  # fmt: skip
            frames.append(b"data: " + json.dumps(chunk).encode() + b"\n\n")
        last = {
            "id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}],
        }  # fmt: skip
        frames[-1] += b"data: " + json.dumps(last).encode() + b"\n\ndata: [DONE]\n\n"
        return await self._stream(request, frames)

    async def anthropic_messages(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(dict(request.headers))
        body = await request.json()
        model = body.get("model", "claude-sonnet-4")
        usage = {"input_tokens": 3, "output_tokens": self.tokens}
        message = {
            "id": "msg_up", "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage,
        }  # fmt: skip
        if not body.get("stream"):
            await asyncio.sleep(self.ttft_s)
            full = {
                **message,
                "content": [{"type": "text", "text": "upstream says hi"}],
                "stop_reason": "end_turn",
            }
            return web.json_response(full)

        def event(name: str, data: dict[str, object]) -> bytes:
            return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

        frames = []
        for i in range(self.tokens):
            frame = b""
            if i == 0:
                frame += event("message_start", {"type": "message_start", "message": message})
                frame += event(
                    "content_block_start",
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    },
                )
            frame += event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": f"t{i} "},
                },
            )
            frames.append(frame)
        frames[-1] += event("content_block_stop", {"type": "content_block_stop", "index": 0})
        frames[-1] += event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": usage,
            },
        )
        frames[-1] += event("message_stop", {"type": "message_stop"})
        return await self._stream(request, frames)


async def start_upstream(upstream: Upstream, pki: Pki | None) -> web.AppRunner:
    """Serve `upstream` on 127.0.0.1 (TLS with `pki`'s leaf, plain HTTP without)."""
    runner = web.AppRunner(upstream.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=pki.server_context() if pki else None)
    await site.start()
    server = site._server
    assert server is not None
    upstream.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner
