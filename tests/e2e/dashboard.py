"""What a person does on the dashboard, in a few words each, for the browser tests.

Set-up that is not under test (agents, past conversations) goes through ``page.request``:
the browser context's own HTTP client, signed in with the same session cookie as the page.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Locator, Page, WebSocketRoute, expect

from tests.support.chat import parse_sse

STREAMING = re.compile(r"\bstreaming\b")
STREAM_RECORDER = """
() => {
  window.__snapshots = [];
  const record = () => {
    const bubbles = document.querySelectorAll('#messages .msg.assistant .bubble');
    const text = bubbles.length ? bubbles[bubbles.length - 1].textContent : '';
    const all = window.__snapshots;
    if (text && all[all.length - 1] !== text) all.push(text);
  };
  new MutationObserver(record).observe(document.getElementById('messages'),
    { subtree: true, childList: true, characterData: true });
}
"""


# The same, for the text of a reply only (its last text segment, after any tool steps).
TEXT_RECORDER = """
() => {
  window.__texts = [];
  const record = () => {
    const segs = document.querySelectorAll('#messages .msg.assistant:last-child .bubble > .seg');
    const text = segs.length ? segs[segs.length - 1].textContent : '';
    const all = window.__texts;
    if (text && all[all.length - 1] !== text) all.push(text);
  };
  new MutationObserver(record).observe(document.getElementById('messages'),
    { subtree: true, childList: true, characterData: true });
}
"""


def open_dashboard(page: Page, path: str = "/") -> None:
    """Loads the dashboard and waits until it has signed in and listed the agents."""
    page.goto(path)
    expect(page.locator("#who")).to_have_attribute("data-state", "signed-in")
    expect(page.locator("#agents-status")).not_to_have_text("Loading…")


def same_origin(page: Page) -> dict[str, str]:
    """The ``Origin`` a browser sends with its own requests (the API context sends none)."""
    parts = urlsplit(page.url)
    return {"Origin": f"{parts.scheme}://{parts.netloc}"}


def session_user(page: Page) -> str:
    response = page.request.get("/api/auth/session")
    assert response.status == 200, response.text()
    user_id: str = response.json()["user"]["id"]
    return user_id


def api_agent(page: Page, **fields: Any) -> dict[str, Any]:
    body = {"name": "Helper", "model": "anthropic:claude-sonnet-4-6", **fields}
    response = page.request.post("/api/agents", data=body, headers=same_origin(page))
    assert response.status == 201, response.text()
    agent: dict[str, Any] = response.json()
    return agent


def api_chat(
    page: Page, agent_id: str, content: str, conversation_id: str | None = None
) -> dict[str, Any]:
    """One whole turn over HTTP; returns the ``ack`` (with ``conversation_id``)."""
    body: dict[str, Any] = {"content": content}
    if conversation_id:
        body["conversation_id"] = conversation_id
    response = page.request.post(
        f"/api/agents/{agent_id}/chat", data=body, headers=same_origin(page), timeout=20_000
    )
    assert response.status == 200, response.text()
    events = parse_sse(response.text())
    assert events[-1][0] == "done", events[-1]
    ack: dict[str, Any] = events[0][1]
    return ack


def card(page: Page, name: str) -> Locator:
    return page.locator(".card").filter(has=page.get_by_role("heading", name=name, exact=True))


def open_chat(page: Page, name: str) -> None:
    card(page, name).get_by_role("button", name=f"Chat with {name}").click()
    expect(page.locator("#chat-title")).to_have_text(name)


def send_message(page: Page, text: str) -> None:
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def replies(page: Page) -> Locator:
    return page.locator("#messages .msg.assistant")


def last_reply(page: Page) -> Locator:
    return replies(page).last.locator(".bubble")


def wait_reply_done(page: Page) -> None:
    expect(replies(page).last).not_to_have_class(STREAMING)
    expect(page.locator("#send")).to_be_visible()


def fill_agent_form(page: Page, **fields: str) -> None:
    dialog = page.get_by_role("dialog")
    for label, value in fields.items():
        dialog.get_by_label(label.replace("_", " ").capitalize(), exact=True).fill(value)


def frames_of(messages: list[str], kind: str) -> list[dict[str, Any]]:
    frames = [json.loads(m) for m in messages]
    return [f for f in frames if f.get("type") == kind]


def tool_steps(reply: Locator) -> Locator:
    """The tool steps (``<details>``) inside a reply (an ``.msg.assistant``)."""
    return reply.locator(".bubble > details.tool-step")


def reply_texts(reply: Locator) -> Locator:
    """The text segments of a reply, without its tool steps."""
    return reply.locator(".bubble > .seg")


def bubble_layout(reply: Locator) -> list[str]:
    """What a reply's bubble holds, in order: ``text`` and ``tool`` entries."""
    layout: list[str] = reply.locator(".bubble").evaluate(
        "b => [...b.children].map((c) => c.matches('details.tool-step') ? 'tool' : "
        "c.matches('.seg') ? 'text' : c.tagName)"
    )
    return layout


def record_sent_frames(page: Page) -> list[dict[str, Any]]:
    """Routes the page's sockets (this page, reloads included) and lists every frame it sends."""
    sent: list[dict[str, Any]] = []

    def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        server.on_message(ws.send)

        def to_server(message: str | bytes) -> None:
            sent.append(json.loads(message))
            server.send(message)

        ws.on_message(to_server)

    page.route_web_socket(re.compile(r"/ws$"), route)
    return sent
