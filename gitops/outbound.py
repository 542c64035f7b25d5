"""What leaves the machine: the URLs servewise calls and the credentials it sends them.

One policy for every outbound URL (Prometheus, forges, what a bundle points at): http or https with a
host, nothing else (no file://, no other schemes). One function strips the userinfo (`user:secret@`)
from every URL that is printed, stored or posted. A token goes only to the host it was configured
for. Token files readable by group or others are refused, as ssh refuses such keys.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path
from urllib.parse import urlsplit

from planner.errors import BadInput

_TOKEN_LIMIT = 64 * 1024
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/?#\s@]*@")


def redact(text: str) -> str:
    """`text` (a URL or a message holding URLs) with the userinfo of every URL removed."""
    return _USERINFO.sub(r"\1", text)


def outbound_url(url: str, what: str) -> str:
    """`url` when it is an http(s) URL with a host; BadInput naming `what` otherwise (the URL redacted)."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        parts = None
    if parts is None or parts.scheme.lower() not in ("http", "https") or not parts.hostname or any(
            ch.isspace() or ord(ch) < 32 for ch in url.strip()):
        raise BadInput(f"{what} {redact(url)[:200]!r} is not an http(s) URL with a host; only http:// and https:// "
                       "URLs are called (e.g. http://prometheus.monitoring.svc:9090)")
    return url.strip()


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)


def same_origin(a: str, b: str) -> bool:
    """Same scheme, host and port: where a token configured for `b` may also be sent."""
    try:
        return origin(a) == origin(b)
    except ValueError:
        return False


def read_token_file(path: Path, what: str) -> str:
    """The stripped content of a token file that only its owner can read."""
    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise BadInput(f"{what} {path} is accessible by group or others (mode {stat.S_IMODE(mode):04o}); a token "
                           f"file must be private: run `chmod 600 {path}`")
        if not stat.S_ISREG(mode):
            raise BadInput(f"{what} {path} is not a regular file")
        with path.open("rb") as fh:
            data = fh.read(_TOKEN_LIMIT + 1)
        if len(data) > _TOKEN_LIMIT:
            raise BadInput(f"{what} {path} is larger than {_TOKEN_LIMIT // 1024} KiB; it does not hold a token")
        return data.decode("utf-8").strip()
    except OSError as exc:
        raise BadInput(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise BadInput(f"{what} {path} is not a text file") from None
