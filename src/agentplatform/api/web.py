"""The dashboard: ``/`` and ``/static/{path}``, files of the package's ``web/`` folder.

Only plain files directly inside ``web/`` with a known extension are served (no dot-files, no
sub-folders, no way out of the folder). Every answer carries a strong ``ETag`` and a
``Cache-Control``: HTML is ``no-cache`` (always revalidated, so a new release shows at once),
scripts, styles and images may be reused for a few minutes. ``If-None-Match`` answers 304.
Text files are gzip-compressed for clients that accept it. HTML goes out with a strict
Content-Security-Policy: the dashboard has no inline script or style, so nothing else is
needed.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request, Response

from agentplatform.errors import NotFound

router = APIRouter(include_in_schema=False)

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
DASHBOARD = "dashboard.html"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
HTML_CACHE = "no-cache"
ASSET_CACHE = "public, max-age=300"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/vnd.microsoft.icon",
    ".webmanifest": "application/manifest+json",
}
COMPRESSIBLE = {".html", ".js", ".css", ".json", ".svg", ".webmanifest"}
MIN_COMPRESS_BYTES = 512


@dataclass(frozen=True, slots=True)
class Asset:
    """One file's bytes, as stored and gzip-compressed, with an ETag for each."""

    content_type: str
    body: bytes
    etag: str
    gzipped: bytes | None
    gzip_etag: str


@lru_cache(maxsize=64)
def _load(path: Path, mtime_ns: int, size: int) -> Asset:
    """Keyed by modification time and size, so an edited file is read again."""
    body = path.read_bytes()
    digest = hashlib.sha256(body).hexdigest()[:20]
    suffix = path.suffix.lower()
    gzipped = None
    if suffix in COMPRESSIBLE and len(body) >= MIN_COMPRESS_BYTES:
        gzipped = gzip.compress(body, compresslevel=9, mtime=0)
    return Asset(CONTENT_TYPES[suffix], body, f'"{digest}"', gzipped, f'"{digest}-gz"')


def _find(name: str) -> Path:
    """The file ``name`` directly inside ``WEB_DIR``, or ``NotFound``."""
    if (
        not name
        or name.startswith(".")
        or any(ch in name for ch in "/\\\x00:")
        or Path(name).suffix.lower() not in CONTENT_TYPES
    ):
        raise NotFound("No such file.")
    root = WEB_DIR.resolve()
    path = (root / name).resolve()
    if path.parent != root or not path.is_file():
        raise NotFound("No such file.")
    return path


def _matches(if_none_match: str | None, etag: str) -> bool:
    if if_none_match is None:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in candidates or etag in candidates


def _accepts_gzip(request: Request) -> bool:
    for part in request.headers.get("accept-encoding", "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in {"gzip", "*"} and params.replace(" ", "") != "q=0":
            return True
    return False


def _serve(request: Request, name: str) -> Response:
    path = _find(name)
    stat = path.stat()
    asset = _load(path, stat.st_mtime_ns, stat.st_size)
    use_gzip = asset.gzipped is not None and _accepts_gzip(request)
    etag = asset.gzip_etag if use_gzip else asset.etag
    headers = {
        "ETag": etag,
        "Cache-Control": HTML_CACHE if path.suffix == ".html" else ASSET_CACHE,
        **SECURITY_HEADERS,
    }
    if asset.gzipped is not None:
        headers["Vary"] = "Accept-Encoding"
    if path.suffix in {".html", ".svg"}:
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    if _matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    if use_gzip:
        headers["Content-Encoding"] = "gzip"
    body = asset.gzipped if use_gzip and asset.gzipped is not None else asset.body
    return Response(body, headers=headers, media_type=asset.content_type)


@router.api_route("/", methods=["GET", "HEAD"])
async def dashboard(request: Request) -> Response:
    return _serve(request, DASHBOARD)


@router.api_route("/static/{name:path}", methods=["GET", "HEAD"])
async def static_file(request: Request, name: str) -> Response:
    return _serve(request, name)
