"""Where the command-centre page's files are, and which of them may be served.

Three kinds of file, none of them committed as a vendored bundle:

* the page itself (``geo_service/web/static/``: HTML, JS, CSS written for OneMap);
* browser libraries installed from the npm registry by ``make setup`` into
  ``<assets root>/node_modules`` (``package.json`` / ``package-lock.json``), served under
  ``/vendor/<package>/<file>`` from an allow-list of exact files (no directory listing, no
  path built from the request);
* MapLibre glyph PBFs generated at set-up from a Debian font into
  ``<assets root>/build/glyphs/<font stack>/<start>-<end>.pbf``.

The assets root is the repository (``make setup`` runs there); ``ONEMAP_WEB_ASSETS_DIR``
points elsewhere for an installed (non-editable) deployment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: The page's own files (HTML/JS/CSS), shipped with the package.
STATIC_DIR = Path(__file__).resolve().parent / "static"

#: Exact files of each npm package that the server hands out (path inside the package).
VENDOR_FILES: Mapping[str, frozenset[str]] = {
    "maplibre-gl": frozenset(
        {
            "dist/maplibre-gl.mjs",
            "dist/maplibre-gl.mjs.map",
            "dist/maplibre-gl-worker.mjs",
            "dist/maplibre-gl-worker.mjs.map",
            "dist/maplibre-gl.css",
            "LICENSE.txt",
        }
    ),
    "echarts": frozenset({"dist/echarts.esm.min.mjs", "dist/echarts.min.js", "LICENSE"}),
    # Folium maps made by the Python client load Leaflet from this server.
    "leaflet": frozenset(
        {
            "dist/leaflet.js",
            "dist/leaflet.js.map",
            "dist/leaflet-src.js",
            "dist/leaflet-src.js.map",
            "dist/leaflet-src.esm.js",
            "dist/leaflet.css",
            "dist/images/layers.png",
            "dist/images/layers-2x.png",
            "dist/images/marker-icon.png",
            "dist/images/marker-icon-2x.png",
            "dist/images/marker-shadow.png",
            "LICENSE",
        }
    ),
}

#: Media types by file suffix; ``.mjs`` must be JavaScript or browsers refuse the module.
MEDIA_TYPES: Mapping[str, str] = {
    ".mjs": "text/javascript; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".map": "application/json",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".pbf": "application/x-protobuf",
    ".txt": "text/plain; charset=utf-8",
    "": "text/plain; charset=utf-8",
}

_RANGE = re.compile(r"^(\d{1,5})-(\d{1,5})$")
_STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}\.(js|css|svg)$")


class AssetNotFound(Exception):
    """The requested file is not on the allow-list (or not a valid glyph range)."""


class AssetNotInstalled(Exception):
    """The file is allowed but set-up has not installed it (``make setup`` not run)."""


def media_type(path: Path) -> str:
    """The ``Content-Type`` of a served file, from its suffix."""
    return MEDIA_TYPES.get(path.suffix, "application/octet-stream")


@dataclass(frozen=True)
class WebAssets:
    """Resolves allowed asset requests to files under ``root`` (the assets root)."""

    root: Path

    @classmethod
    def from_env(cls) -> WebAssets:
        """The assets root from ``ONEMAP_WEB_ASSETS_DIR``, else this repository."""
        configured = os.environ.get("ONEMAP_WEB_ASSETS_DIR")
        root = Path(configured) if configured else Path(__file__).resolve().parents[2]
        return cls(root.resolve())

    @property
    def glyphs_dir(self) -> Path:
        return self.root / "build" / "glyphs"

    def vendor_file(self, package: str, path: str) -> Path:
        """The installed file ``path`` of npm ``package``, if it is on the allow-list."""
        allowed = VENDOR_FILES.get(package)
        if allowed is None or path not in allowed:
            raise AssetNotFound(f"/vendor/{package}/{path} is not served")
        file = self.root / "node_modules" / package / path
        if not file.is_file():
            raise AssetNotInstalled(
                f"{package} is not installed (run 'make setup': npm ci in {self.root})"
            )
        return file

    def font_stacks(self) -> tuple[str, ...]:
        """Names of the font stacks whose glyphs were generated completely."""
        if not self.glyphs_dir.is_dir():
            return ()
        return tuple(
            sorted(d.name for d in self.glyphs_dir.iterdir() if (d / ".complete").is_file())
        )

    def glyph_file(self, fontstack: str, glyph_range: str) -> Path | None:
        """The PBF of ``glyph_range`` (``"0-255"``) for the first available font of
        ``fontstack`` (comma-separated names, as MapLibre sends them); ``None`` when that
        font has no glyph in the range (MapLibre then draws it with a local font)."""
        m = _RANGE.match(glyph_range)
        if m is None:
            raise AssetNotFound(f"glyph range must be like 0-255, got {glyph_range!r}")
        start, end = int(m.group(1)), int(m.group(2))
        if start % 256 or end != start + 255 or end > 65535:
            raise AssetNotFound(f"glyph range must span 256 code points: {glyph_range!r}")
        available = self.font_stacks()
        if not available:
            raise AssetNotInstalled("glyphs are not generated (run 'make setup')")
        # Only names found on disk are joined into a path, never the request's text.
        for name in (part.strip() for part in fontstack.split(",")):
            if name in available:
                file = self.glyphs_dir / name / f"{start}-{end}.pbf"
                return file if file.is_file() else None
        raise AssetNotFound(f"unknown font stack {fontstack!r}; available: {list(available)}")

    @staticmethod
    def static_file(name: str) -> Path:
        """A file of the page itself (``screen.js``, ``screen.css``, …)."""
        if not _STATIC_NAME.match(name):
            raise AssetNotFound(f"/screen/static/{name} is not served")
        file = STATIC_DIR / name
        if not file.is_file():
            raise AssetNotFound(f"/screen/static/{name} is not served")
        return file
