"""Debian's Chromium driven by Playwright (the PyPI package's own driver; no browser is
downloaded), and what a test watches on a page: console messages, requests, failures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import Browser, ConsoleMessage, Page, Request, Response, sync_playwright

REPO = Path(__file__).resolve().parents[2]
#: Screenshots for review (git-ignored).
ARTIFACTS = REPO / "tests" / "artifacts" / "screen"
CHROMIUM = "/usr/bin/chromium"
#: Flags known to work here: no sandbox (root), no network side-channels, WebGL on
#: SwiftShader (no GPU on the test machines).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--js-flags=--expose-gc",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium, closed after (Playwright gives it an empty, temporary profile)."""
    assert Path(CHROMIUM).exists(), "Debian's chromium is not installed (make setup)"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class PageWatch:
    """Everything a page logged, and everything it (or its workers) requested."""

    console: list[tuple[str, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    bad_status: list[tuple[int, str]] = field(default_factory=list)

    def attach(self, page: Page) -> PageWatch:
        def on_console(msg: ConsoleMessage) -> None:
            self.console.append((msg.type, msg.text))

        def on_request(req: Request) -> None:
            self.requests.append(req.url)

        def on_failed(req: Request) -> None:
            self.failed.append(f"{req.url} {req.failure}")

        def on_response(resp: Response) -> None:
            if resp.status >= 400:
                self.bad_status.append((resp.status, resp.url))

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        # On the context: it also sees the requests of the page's workers (MapLibre's tiles).
        page.context.on("request", on_request)
        page.context.on("requestfailed", on_failed)
        page.context.on("response", on_response)
        return self

    def console_errors(self) -> list[str]:
        return [text for kind, text in self.console if kind == "error"] + self.errors

    def foreign_requests(self, host: str) -> list[str]:
        """Requests that went anywhere but ``host`` (``data:``/``blob:`` stay in the page)."""
        out = []
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob"):
                continue
            if parts.hostname != host:
                out.append(url)
        return out


def screenshot(page: Page, name: str) -> Path:
    """A PNG of the page under tests/artifacts/screen/ (git-ignored), for review."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def wait_ready(page: Page, timeout_ms: int = 60_000) -> float:
    """Waits until the map's first idle with the style's default layers drawn; returns the
    milliseconds from navigation start (the page's own measure)."""
    page.wait_for_function(
        "window.onemapScreen && window.onemapScreen.state.ready", timeout=timeout_ms
    )
    return float(page.evaluate("window.onemapScreen.state.readyMs"))


def wait_idle(page: Page, timeout_ms: int = 30_000) -> None:
    """Waits until the map has loaded every tile it needs and stopped moving."""
    page.wait_for_function(
        "(() => { const m = window.onemapScreen.map; return m && m.loaded() && !m.isMoving()"
        " && m.areTilesLoaded(); })()",
        timeout=timeout_ms,
    )


def rendered(page: Page, style_layer: str) -> list[dict]:
    """Properties of the features of ``style_layer`` drawn in the viewport (MapLibre's
    ``queryRenderedFeatures``)."""
    return page.evaluate(
        "(id) => window.onemapScreen.map.queryRenderedFeatures({layers: [id]})"
        ".map(f => f.properties)",
        style_layer,
    )


_LAST_MILE = "document.querySelector(`li.warning[data-warning-code='${code}'] .last-mile`)"


def last_mile_box(page: Page, code: str) -> dict:
    """The screen's last-mile box of a warning: its data attributes and text."""
    box = page.evaluate(
        f"(code) => {{ const b = {_LAST_MILE}; return b ? {{...b.dataset, text: b.textContent}}"
        " : null; }",
        code,
    )
    assert box is not None, f"the screen shows no last-mile box for warning {code}"
    return dict(box)


def wait_last_mile(page: Page, code: str, field: str, value: int, timeout_ms: int = 15_000) -> None:
    """Waits until the warning's last-mile box shows ``value`` in data attribute ``field``
    (``recipients``, ``acknowledged``, ``toMove`` …)."""
    page.wait_for_function(
        f"([code, field, value]) => {{ const b = {_LAST_MILE};"
        " return b && Number(b.dataset[field]) === value; }",
        arg=[code, field, value],
        timeout=timeout_ms,
    )
