"""How the dashboard is served: caching, compression, safe paths, first-load weight, phone width."""

from __future__ import annotations

import gzip
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from tests.e2e.conftest import ContextFactory, LiveServer, screenshot
from tests.e2e.dashboard import api_agent, api_chat, open_chat, open_dashboard
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.server import FakeToolCall, Script

FIRST_LOAD_BUDGET = 150 * 1024
NO_HORIZONTAL_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"


@pytest.fixture
def http(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "content_type", "cache"),
    [
        ("/", "text/html; charset=utf-8", "no-cache"),
        ("/static/dashboard.html", "text/html; charset=utf-8", "no-cache"),
        ("/static/app.js", "text/javascript; charset=utf-8", "public, max-age=300"),
        ("/static/styles.css", "text/css; charset=utf-8", "public, max-age=300"),
        ("/static/favicon.svg", "image/svg+xml", "public, max-age=300"),
    ],
)
def test_static_files_are_cached_and_revalidated(
    http: httpx.Client, path: str, content_type: str, cache: str
) -> None:
    first = http.get(path, headers={"Accept-Encoding": "identity"})
    assert first.status_code == 200
    assert first.headers["content-type"] == content_type
    assert first.headers["cache-control"] == cache
    assert first.headers["x-content-type-options"] == "nosniff"
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    again = http.get(path, headers={"If-None-Match": etag, "Accept-Encoding": "identity"})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag
    assert again.headers["cache-control"] == cache
    head = http.head(path, headers={"Accept-Encoding": "identity"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == etag


def test_text_files_are_compressed_with_their_own_etag(http: httpx.Client) -> None:
    plain = http.get("/static/app.js", headers={"Accept-Encoding": "identity"})
    packed = http.get("/static/app.js", headers={"Accept-Encoding": "gzip, br"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["vary"] == "Accept-Encoding"
    assert packed.headers["etag"] != plain.headers["etag"]
    assert packed.content == plain.content  # httpx decoded it
    assert len(gzip.compress(plain.content)) < len(plain.content)
    refused = http.get("/static/app.js", headers={"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in refused.headers


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        *(
            (path, 404, "not_found")
            for path in (
                "/static/..%2f..%2fapp.py",
                "/static/%2e%2e/api/web.py",
                "/static/..%5c..%5capp.py",
                "/static/%2e%2e%2f%2e%2e%2f%2e%2e%2fpyproject.toml",
                "/static/.hidden.js",
                "/static/../app.py",
                "/static/web.py",
                "/static/missing.js",
                "/static/",
            )
        ),
        ("/static/app.js%00.html", 400, "bad_request"),  # a NUL is refused at the door
    ],
)
def test_paths_outside_the_web_folder_are_not_served(
    server: LiveServer, path: str, status: int, code: str
) -> None:
    # Sent as written: httpx would otherwise resolve the dots itself.
    with httpx.Client(base_url=server.url) as raw:
        request = raw.build_request("GET", "/")
        request.url = request.url.copy_with(raw_path=path.encode())
        response = raw.send(request)
    assert response.status_code == status, path
    assert response.json()["error"]["code"] == code


def test_first_load_transfers_under_150_kb(page: Page) -> None:
    loaded: list[Request] = []
    page.on("requestfinished", lambda request: loaded.append(request))
    open_dashboard(page)
    expect(page.get_by_role("heading", name="No agents yet")).to_be_visible()
    page.wait_for_load_state("networkidle")
    total = 0
    rows = []
    for request in loaded:
        sizes = request.sizes()
        size = sizes["responseBodySize"] + sizes["responseHeadersSize"]
        total += size
        rows.append(f"{size:>7}  {request.method} {request.url}")
        response = request.response()
        assert response is not None
        if "/static/" in request.url or request.url.endswith("/"):
            headers = response.headers
            assert "etag" in headers and "cache-control" in headers, request.url
            assert headers.get("content-encoding") == "gzip" or size < 1024, request.url
    print(f"\nfirst load: {total / 1024:.1f} KB in {len(rows)} requests\n" + "\n".join(rows))
    assert total < FIRST_LOAD_BUDGET, "\n".join(rows)


def test_phone_width_has_no_horizontal_scroll(
    new_context: ContextFactory, fake_anthropic: FakeAnthropic
) -> None:
    page = new_context(viewport={"width": 375, "height": 740}, device_scale_factor=2).new_page()
    open_dashboard(page)
    long_word = "Supercalifragilistic" * 6
    agent = api_agent(
        page,
        name="A rather long agent name that has to wrap on a phone",
        description=long_word,
        tags=["phone", "narrow", "layout", "a-very-long-tag-for-a-phone"],
        tools=["calculator"],
    )
    api_chat(page, agent["id"], "Show me something wide")
    page.reload()
    expect(page.locator(".card")).to_have_count(1)
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    screenshot(page, "16-phone-cards")

    page.get_by_role("button", name="New agent").click()
    expect(page.get_by_role("dialog", name="New agent")).to_be_visible()
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    screenshot(page, "17-phone-modal")
    page.keyboard.press("Escape")

    open_chat(page, "A rather long agent name that has to wrap on a phone")
    expect(page.locator("#messages .msg.user")).to_have_count(1)  # the last conversation
    wide = f"https://example.com/{long_word}\n\n```\n{'x' * 300}\n```\n\n{long_word}"
    table = "| " + " | ".join(["column"] * 12) + " |\n|" + "---|" * 12 + "\n"
    expression = "+".join(["123456789"] * 40)
    fake_anthropic.push(
        Script(tool_calls=[FakeToolCall("calculator", {"expression": expression, "x": long_word})]),
        Script(text=[wide, "\n\n", table]),
    )
    page.locator("#message").fill(wide)
    page.locator("#message").press("Enter")
    expect(page.locator("#messages .msg.assistant")).to_have_count(2)
    expect(page.locator("#send")).to_be_visible()
    step = page.locator("#messages .msg.assistant").last.locator("details.tool-step")
    step.locator("summary").click()
    expect(step.locator(".tool-result")).to_be_visible()  # an error: the extra argument
    for selector in ("#chat", "#log"):
        assert page.eval_on_selector(selector, "el => el.scrollWidth <= el.clientWidth"), selector
    assert page.evaluate(NO_HORIZONTAL_SCROLL)
    screenshot(page, "18-phone-chat")
    page.get_by_role("button", name="Back to agents").click()
    expect(page.locator("#chat")).to_be_hidden()
    expect(page.locator(".card")).to_be_visible()
