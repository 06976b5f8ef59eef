"""URL fields of the specs, checked when the spec is validated (not when the first request
needs them): a `redisUrl: "not a url"` used to validate and then turn every request into a 500."""

from __future__ import annotations

from urllib.parse import urlsplit

REDIS_SCHEMES = ("redis", "rediss", "unix")
"""What the Redis client accepts: `redis://[user:password@]host[:port][/db]`, `rediss://` (TLS),
`unix:///path/to/socket`."""
HTTP_SCHEMES = ("http", "https")


def check(value: str, schemes: tuple[str, ...]) -> str:
    """`value` when it is a well-formed URL with one of `schemes`; ValueError saying what is wrong."""
    if not value or value != value.strip() or any(ch.isspace() for ch in value):
        raise ValueError(f"{value!r} is not a URL (it is empty or contains whitespace)")
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        shown = f"{parts.scheme}://" if parts.scheme else "no scheme"
        raise ValueError(
            f"{value!r} is not a URL llmsim can use: {shown}; expected {' or '.join(s + '://' for s in schemes)}"
        )
    try:
        port = parts.port  # raises for a port that is not a number in 0..65535
    except ValueError:
        raise ValueError(f"{value!r}: the port is not a number between 1 and 65535") from None
    if port == 0:
        raise ValueError(f"{value!r}: the port is not a number between 1 and 65535")
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError(f"{value!r}: a unix:// URL needs the socket's path (unix:///path/to/redis.sock)")
        return value
    if not parts.hostname:
        raise ValueError(f"{value!r}: the URL has no host")
    if parts.scheme in ("redis", "rediss"):
        db = parts.path.lstrip("/")
        if db and not db.isdigit():
            raise ValueError(f"{value!r}: the path must be a database number (redis://host:6379/0)")
    return value
