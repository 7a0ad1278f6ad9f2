"""careloop's style sheet, scripts and plotly.js: content-hashed, compressed once, cached for good.

At start-up :func:`load_assets` reads every file of ``static/`` and the
plotly.js (and its style rules) that the installed ``plotly`` package ships,
and compresses each once with gzip and, where the ``brotli`` package is
installed, with brotli. A request never compresses an asset.

Every asset answers at two addresses:

- its hashed address, ``/static/careloop.<hash>.css`` or
  ``/vendor/plotly.min.<hash>.js`` (what :meth:`AssetStore.url` gives the
  templates): ``Cache-Control: public, max-age=31536000, immutable``, since
  new content gets a new address;
- its plain address, ``/static/careloop.css``: ``Cache-Control: public,
  no-cache``, so a browser asks again and gets ``304 Not Modified`` while the
  content is the same.

An address with another hash (a page cached before an upgrade, or one worker
still on the old version) gets today's content, not cached for good.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import Response

from careloop.core.errors import NotFound

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "public, no-cache"
MIN_COMPRESS = 256
"""Smaller files are sent as they are: compression would save next to nothing."""

_MEDIA_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
_HASHED = re.compile(r"^(?P<stem>.+)\.(?P<digest>[0-9a-f]{12})(?P<ext>\.[A-Za-z0-9]+)$")

Encoding = Literal["br", "gzip", "identity"]

try:  # brotli is optional: without it, gzip only
    import brotli as _brotli
except ImportError:  # pragma: no cover - brotli is a dependency; a bare install may lack it
    _brotli = None


@dataclass(frozen=True)
class Asset:
    """One file, as sent: its bytes and their compressed forms."""

    path: str
    """Its plain address, e.g. ``/static/careloop.css``."""
    media_type: str
    """Its Content-Type."""
    body: bytes
    """The file."""
    digest: str
    """The first 12 hex digits of the SHA-256 of ``body``: part of its hashed address."""
    gzip: bytes | None
    """``body`` gzip-compressed (None for a file too small to gain)."""
    brotli: bytes | None
    """``body`` brotli-compressed (None when too small or brotli is not installed)."""

    @property
    def url(self) -> str:
        """Its hashed address, e.g. ``/static/careloop.0123456789ab.css``."""
        folder, _, name = self.path.rpartition("/")
        stem, dot, ext = name.rpartition(".")
        return f"{folder}/{stem}.{self.digest}{dot}{ext}"

    def encoded(self, encoding: Encoding) -> bytes:
        """The bytes sent for ``encoding``."""
        if encoding == "br" and self.brotli is not None:
            return self.brotli
        if encoding == "gzip" and self.gzip is not None:
            return self.gzip
        return self.body


_COMPRESSED: dict[tuple[str, str], tuple[bytes | None, bytes | None]] = {}
_COMPRESSED_LOCK = threading.Lock()


def _compress(path: str, body: bytes, digest: str) -> tuple[bytes | None, bytes | None]:
    # Once per process and content: the tests build many apps, a server one.
    with _COMPRESSED_LOCK:
        if (path, digest) not in _COMPRESSED:
            if len(body) < MIN_COMPRESS:
                _COMPRESSED[(path, digest)] = (None, None)
            else:
                # gzip 6 and brotli 5 compress plotly.js in about 1.5 s together; the
                # highest brotli level saves 15% more but takes most of a minute.
                packed = gzip.compress(body, compresslevel=6, mtime=0)
                squeezed = _brotli.compress(body, quality=5) if _brotli is not None else None
                _COMPRESSED[(path, digest)] = (packed, squeezed)
        return _COMPRESSED[(path, digest)]


def make_asset(path: str, body: bytes) -> Asset:
    """The asset at plain address ``path`` with content ``body``, compressed."""
    suffix = Path(path).suffix
    digest = hashlib.sha256(body).hexdigest()[:12]
    packed, squeezed = _compress(path, body, digest)
    return Asset(
        path, _MEDIA_TYPES.get(suffix, "application/octet-stream"), body, digest, packed, squeezed
    )


class AssetStore:
    """The assets one app serves, by plain address."""

    def __init__(self, assets: Iterable[Asset]) -> None:
        self._assets = {a.path: a for a in assets}

    def url(self, path: str) -> str:
        """The hashed address of the asset at plain address ``path`` (for templates)."""
        asset = self._assets.get(path)
        if asset is None:
            raise KeyError(f"No asset at {path!r}; assets: {', '.join(sorted(self._assets))}.")
        return asset.url

    def find(self, folder: str, name: str) -> tuple[Asset, bool]:
        """The asset a request for ``/folder/name`` means, and whether it named today's hash.

        Raises:
            NotFound: no such asset.
        """
        asset = self._assets.get(f"/{folder}/{name}")
        if asset is not None:
            return asset, False
        hashed = _HASHED.match(name)
        if hashed is not None:
            asset = self._assets.get(f"/{folder}/{hashed['stem']}{hashed['ext']}")
            if asset is not None:
                return asset, hashed["digest"] == asset.digest
        raise NotFound(f"There is no file /{folder}/{name}.")

    def __iter__(self) -> Iterator[Asset]:
        return iter(self._assets.values())


def _plotly_files() -> list[Asset]:
    # Imported here: the dashboards page module owns how plotly.js's styles are read.
    from careloop.web.pages.dashboards import plotly_css

    script = (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
    css = plotly_css(script.decode("utf-8")).encode("utf-8")
    return [make_asset("/vendor/plotly.min.js", script), make_asset("/vendor/plotly.css", css)]


def load_assets(static_dir: Path) -> AssetStore:
    """Every file of ``static_dir`` (at ``/static/…``) and plotly.js (at ``/vendor/…``)."""
    files = sorted(p for p in static_dir.iterdir() if p.is_file())
    return AssetStore(
        [make_asset(f"/static/{p.name}", p.read_bytes()) for p in files] + _plotly_files()
    )


def accepts(accept_encoding: str, encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` header accepts ``encoding`` (``q=0`` refuses it)."""
    accepted: dict[str, float] = {}
    for part in accept_encoding.lower().split(","):
        token, _, params = part.strip().partition(";")
        q = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip() == "q":
            try:
                q = float(value)
            except ValueError:
                q = 0.0
        accepted[token.strip()] = q
    return accepted.get(encoding, accepted.get("*", 0.0)) > 0


def accepted_encoding(accept_encoding: str) -> Encoding:
    """The best encoding a client accepts: brotli, then gzip, else none."""
    if _brotli is not None and accepts(accept_encoding, "br"):
        return "br"
    if accepts(accept_encoding, "gzip"):
        return "gzip"
    return "identity"


def asset_response(request: Request, asset: Asset, *, current: bool) -> Response:
    """``asset`` for this request: compressed as the client accepts, 304 when it has it."""
    encoding = accepted_encoding(request.headers.get("accept-encoding", ""))
    body = asset.encoded(encoding)
    sent: Encoding = "identity" if body is asset.body else encoding
    etag = f'"{asset.digest}"' if sent == "identity" else f'"{asset.digest}-{sent}"'
    headers = {
        "Cache-Control": IMMUTABLE if current else REVALIDATE,
        "ETag": etag,
        "Vary": "Accept-Encoding",
    }
    if sent != "identity":
        headers["Content-Encoding"] = sent
    if asset.digest in request.headers.get("if-none-match", ""):
        headers.pop("Content-Encoding", None)  # a 304 has no body to decode
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=asset.media_type, headers=headers)


router = APIRouter(include_in_schema=False)


def _serve(request: Request, folder: str, name: str) -> Response:
    store: AssetStore = request.app.state.assets
    asset, current = store.find(folder, name)
    return asset_response(request, asset, current=current)


@router.api_route("/static/{name}", methods=["GET", "HEAD"])
def static_file(request: Request, name: str) -> Response:
    """careloop's own style sheet, scripts and icon."""
    return _serve(request, "static", name)


@router.api_route("/vendor/{name}", methods=["GET", "HEAD"])
def vendor_file(request: Request, name: str) -> Response:
    """plotly.js and its style rules, from the installed ``plotly`` package."""
    return _serve(request, "vendor", name)
