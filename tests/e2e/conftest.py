"""Browser fixtures: a real server on loopback, Debian's Chromium driven by Playwright.

The server is the real app (SQLite in a temporary folder) with its providers pointed at the
wire-level fakes, served by uvicorn in a background thread; a tiny "docs site" on loopback
is the one address its ``http_fetch`` tool may reach (the operator allow-list). Chromium is
``/usr/bin/chromium`` — never a downloaded browser — started headless with the flags that keep
it off the network and a fresh temporary profile. Each test gets a new browser context (its
own cookies and storage) and a page watched by a ``Guard``: a dialog, a request to any host
other than the server, a Content-Security-Policy violation or an uncaught script error fails
the test.

Without Chromium the browser tests are skipped locally and fail under ``CI=true``; without the
``playwright`` package the test modules are left out locally and fail to import under CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
import uvicorn

from agentplatform.app import create_app
from agentplatform.config import Settings
from agentplatform.store.db import Database
from agentplatform.store.migrate import upgrade
from tests.conftest import provider_settings
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request

CHROMIUM = os.environ.get("AGENTPLATFORM_E2E_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--no-default-browser-check",
    "--metrics-recording-only",
    # Any name other than loopback fails to resolve: nothing can leave the machine.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "[::1]", "::1"}


def _playwright_missing() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return True
    return False


# Without Playwright the test modules cannot even be imported: locally they are left out of
# the run; under CI they are collected anyway, so the import error fails the run.
collect_ignore_glob = ["test_*.py"] if _playwright_missing() and not IN_CI else []


def _missing_browser() -> str | None:
    if _playwright_missing():
        return "the 'playwright' package is not installed (pip install playwright)"
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)) and not shutil.which(
        CHROMIUM
    ):
        return f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    return None


@pytest.fixture(scope="session")
def chromium_path() -> str:
    reason = _missing_browser()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"browser tests need Chromium under CI=true: {reason}", pytrace=False)
        pytest.skip(f"browser tests skipped: {reason}")
    return CHROMIUM


# -- the server -------------------------------------------------------------------------------


class _Uvicorn(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # a server in a thread leaves the test process's signal handlers alone


@dataclass
class LiveServer:
    """The app on ``http://127.0.0.1:<port>``, in its own thread and event loop.

    Everything asynchronous runs in that thread: Playwright's sync API keeps an event loop
    running in the test thread, so no ``asyncio.run`` may happen there.
    """

    settings: Settings
    url: str = ""
    _server: _Uvicorn | None = None
    _thread: threading.Thread | None = None

    def start(self) -> LiveServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(256)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            create_app(self.settings),
            lifespan="on",
            log_level="warning",
            ws_max_size=self.settings.ws_max_frame_bytes,
        )
        server = self._server = _Uvicorn(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._run(server, sock)), name="e2e-app", daemon=True
        )
        self._thread.start()
        if not server.ready.wait(30):
            raise RuntimeError("the app did not start")
        return self

    async def _run(self, server: _Uvicorn, sock: socket.socket) -> None:
        db = Database(self.settings.database_url)
        try:
            await upgrade(db)
        finally:
            await db.dispose()
        await server.serve(sockets=[sock])

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(20)


DOCS_PAGES = {
    "/prices": (
        "<!doctype html><html><head><title>Widget prices</title></head><body>"
        "<h1>Price list</h1><p>One widget costs 7 euros.</p></body></html>"
    ),
}


class _DocsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        page = DOCS_PAGES.get(self.path)
        body = (page or "<!doctype html><title>Not found</title>").encode()
        self.send_response(200 if page else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="package")
def docs_site() -> Iterator[str]:
    """``http://127.0.0.1:<port>``: a few static pages for the ``http_fetch`` tool to read."""
    site = ThreadingHTTPServer(("127.0.0.1", 0), _DocsHandler)
    thread = threading.Thread(target=site.serve_forever, name="e2e-docs", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{site.server_address[1]}"
    finally:
        site.shutdown()
        site.server_close()


@pytest.fixture(scope="package")
def server(
    fake_anthropic: FakeAnthropic,
    fake_openai: FakeOpenAI,
    docs_site: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("e2e")
    extra = provider_settings(fake_anthropic, fake_openai, folder / "models")
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{folder / 'app.sqlite'}",
        http_fetch_allow_hosts=[urlsplit(docs_site).netloc],
        **extra,
    )
    live = LiveServer(settings).start()
    try:
        yield live
    finally:
        live.stop()


# -- the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="package")
def browser(chromium_path: str) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    # Playwright gives every launched browser a fresh temporary --user-data-dir. Package
    # scope: the sync API's event loop must be gone before other packages' async tests run.
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=chromium_path, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            chromium.close()


# Records what would show an injection or a policy breach; installed before any page script.
WATCH_SCRIPT = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', (e) => {
  window.__csp.push(e.violatedDirective + ' ' + e.blockedURI);
});
"""


@dataclass
class Guard:
    """What a page did that it never should: collected while the test runs, checked after."""

    origin: str
    dialogs: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    csp_messages: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_reports: list[str] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        self.pages.append(page)
        page.on("dialog", self._on_dialog)
        page.on("request", self._on_request)
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def _on_dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _on_request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in {"data", "blob", "about"}:
            return
        if parts.hostname not in LOOPBACK_HOSTS and f"[{parts.hostname}]" not in LOOPBACK_HOSTS:
            self.foreign_requests.append(request.url)

    def _on_console(self, message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or "Refused to" in text:
            self.csp_messages.append(text)

    def harvest(self) -> None:
        """Collects the CSP reports raised inside the open pages (call before closing them)."""
        for page in self.pages:
            if page.is_closed():
                continue
            with contextlib.suppress(Exception):  # a page mid-navigation has no window
                self.csp_reports.extend(page.evaluate("window.__csp || []"))

    def violations(self) -> list[str]:
        """Every breach seen so far."""
        self.harvest()
        found = [f"dialog {d}" for d in self.dialogs]
        found += [f"request to {u}" for u in self.foreign_requests]
        found += [f"console: {m}" for m in self.csp_messages]
        found += [f"csp: {r}" for r in dict.fromkeys(self.csp_reports)]
        found += [f"page error: {e}" for e in self.page_errors]
        return found


@pytest.fixture
def guard(server: LiveServer) -> Iterator[Guard]:
    """Fails the test if any watched page broke a rule (checked after the test)."""
    watched = Guard(server.url)
    yield watched
    assert watched.violations() == []


ContextFactory = Callable[..., "BrowserContext"]


@pytest.fixture
def new_context(browser: Browser, server: LiveServer, guard: Guard) -> Iterator[ContextFactory]:
    """Makes fresh browser contexts whose pages are all watched by ``guard``."""
    contexts: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        options.setdefault("locale", "en-US")
        options.setdefault("viewport", {"width": 1280, "height": 800})
        context = browser.new_context(base_url=server.url, **options)
        context.set_default_timeout(8_000)
        context.add_init_script(WATCH_SCRIPT)
        context.on("page", guard.watch)
        contexts.append(context)
        return context

    yield make
    guard.harvest()
    for context in contexts:
        with contextlib.suppress(Exception):
            context.close()


@pytest.fixture
def page(new_context: ContextFactory) -> Page:
    """A page of a fresh context: a first-time visitor."""
    return new_context().new_page()


@pytest.fixture(autouse=True)
def _expect_timeout() -> None:
    with contextlib.suppress(ImportError):
        from playwright.sync_api import expect

        expect.set_options(timeout=8_000)


def screenshot(page: Page, name: str, *, full_page: bool = False) -> Path:
    """Saves ``artifacts/screenshots/<name>.png`` (git-ignored) for a person to look at."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
