"""The chat pane: stop, the conversation list (new, rename, delete) and paged history."""

from __future__ import annotations

import itertools
import re

from playwright.sync_api import Page, Route, WebSocketRoute, expect

from tests.e2e.conftest import screenshot
from tests.e2e.dashboard import (
    STREAM_RECORDER,
    STREAMING,
    api_agent,
    api_chat,
    card,
    last_reply,
    open_chat,
    open_dashboard,
    record_sent_frames,
    replies,
    send_message,
)
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.server import Script


def test_stop_cancels_the_reply_and_keeps_what_was_written(
    page: Page, fake_anthropic: FakeAnthropic
) -> None:
    open_dashboard(page)
    api_agent(page, name="Talkative")
    page.reload()
    open_chat(page, "Talkative")
    fake_anthropic.push(Script(text=[f"on{i} " for i in range(200)], token_delay=0.05))
    send_message(page, "Talk for a long time")
    expect(last_reply(page)).to_contain_text("on3")
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#messages .msg.assistant .msg-status")).to_have_text("Stopped.")
    expect(page.get_by_role("button", name="Send")).to_be_visible()
    expect(last_reply(page)).not_to_contain_text("on199")
    talkative = card(page, "Talkative")
    expect(talkative.locator(".total-runs")).to_have_text("1")
    expect(talkative.locator(".successful-runs")).to_have_text("0")


def test_a_reply_still_being_written_at_reload_resumes_over_the_socket(
    page: Page, fake_anthropic: FakeAnthropic
) -> None:
    """After a reload, history says the reply is ``streaming`` and names its run: the page
    asks the socket to ``resume`` that run from its start, and never polls the history."""
    sent = record_sent_frames(page)
    history = re.compile(r"/api/conversations/[^/]+/messages")
    reads: list[str] = []
    page.on("request", lambda r: reads.append(r.url) if history.search(r.url) else None)
    open_dashboard(page)
    api_agent(page, name="Slow writer")
    page.reload()
    open_chat(page, "Slow writer")
    words = [f"slow{i} " for i in range(25)]
    fake_anthropic.push(Script(text=words, token_delay=0.1))
    send_message(page, "Take your time")
    expect(last_reply(page)).to_contain_text("slow2")
    # Generation is not tied to the page: it goes on while the page reloads.
    page.add_init_script(f"addEventListener('DOMContentLoaded', {STREAM_RECORDER})")
    reads.clear()
    page.reload()
    expect(page.locator("#chat-title")).to_have_text("Slow writer")
    expect(page.locator("#messages .msg.user .bubble")).to_have_text(["Take your time"])
    expect(replies(page).last).to_have_class(STREAMING)
    conversation = page.request.get("/api/conversations").json()["items"][0]["id"]
    stored = page.request.get(f"/api/conversations/{conversation}/messages").json()["items"]
    run_id = stored[-1]["run_id"]
    assert run_id and stored[-1]["status"] == "streaming"
    full = "".join(words).strip()
    expect(last_reply(page)).to_have_text(full, timeout=15_000)
    expect(replies(page)).to_have_count(1)
    expect(card(page, "Slow writer").locator(".successful-runs")).to_have_text("1")

    resumes = [f for f in sent if f["type"] == "resume"]
    assert resumes == [{"type": "resume", "run_id": run_id, "after_seq": 0}], sent
    assert len(reads) == 1, reads  # the first page of history, then only the socket
    snapshots: list[str] = page.evaluate("window.__snapshots")
    assert snapshots[-1].strip() == full
    # The text only ever grew: no flash back to empty, no word twice.
    assert all(b.startswith(a) for a, b in itertools.pairwise(snapshots)), snapshots
    assert len(snapshots) >= 3, snapshots


def test_conversations_new_rename_and_delete(page: Page) -> None:
    open_dashboard(page)
    agent = api_agent(page, name="Organised")
    api_chat(page, agent["id"], "First topic")
    api_chat(page, agent["id"], "Second topic")
    page.reload()
    open_chat(page, "Organised")
    # The most recent conversation opens first.
    expect(page.locator("#messages .msg.user .bubble")).to_have_text(["Second topic"])

    toggle = page.get_by_role("button", name="Conversations")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    panel = page.get_by_role("navigation", name="Conversations")
    expect(panel.locator(".convo-title")).to_have_text(["Second topic", "First topic"])
    screenshot(page, "08-conversation-list")
    panel.locator(".convo-open", has_text="First topic").click()
    expect(panel).to_be_hidden()
    expect(page.locator("#messages .msg.user .bubble")).to_have_text(["First topic"])

    toggle.click()
    panel.get_by_role("button", name="Rename “First topic”").click()
    rename = page.get_by_role("dialog", name="Rename conversation")
    rename.get_by_label("Title").fill("Renamed topic")
    rename.get_by_role("button", name="Save").click()
    expect(panel.locator(".convo-title")).to_have_text(["Second topic", "Renamed topic"])
    titles = [c["title"] for c in page.request.get("/api/conversations").json()["items"]]
    assert sorted(titles) == ["Renamed topic", "Second topic"]

    panel.get_by_role("button", name="Delete “Second topic”").click()
    confirm = page.get_by_role("dialog", name="Delete this conversation?")
    confirm.get_by_role("button", name="Delete").click()
    expect(panel.locator(".convo-title")).to_have_text(["Renamed topic"])

    page.get_by_role("button", name="New chat").click()
    expect(page.locator("#chat-hello")).to_be_visible()
    send_message(page, "A third topic")
    expect(last_reply(page)).to_have_text("Hello from the fake model.")
    toggle.click()
    expect(panel.locator(".convo-title")).to_have_text(["A third topic", "Renamed topic"])
    expect(panel.locator('[aria-current="true"]')).to_contain_text("A third topic")


class HeldSocket:
    """Routes the page's socket; once the page sends a chat turn, the server's frames are
    held back until ``release()``."""

    def __init__(self) -> None:
        self.page_side: WebSocketRoute | None = None
        self.held: list[str | bytes] = []
        self.holding = False

    def route(self, ws: WebSocketRoute) -> None:
        self.page_side = ws
        server = ws.connect_to_server()
        server.on_message(self.to_page)

        def to_server(message: str | bytes) -> None:
            if '"type": "chat"' in str(message) or '"type":"chat"' in str(message):
                self.holding = True
            server.send(message)

        ws.on_message(to_server)

    def to_page(self, message: str | bytes) -> None:
        if self.holding:
            self.held.append(message)
        elif self.page_side is not None:
            self.page_side.send(message)

    def release(self) -> None:
        self.holding = False
        for message in self.held:
            self.to_page(message)


def test_a_message_sent_while_history_loads_shows_once(page: Page) -> None:
    """The slow history page arrives holding the new turn before the socket's ack does."""
    open_dashboard(page)
    agent = api_agent(page, name="Racer")
    conversation = api_chat(page, agent["id"], "Earlier message")["conversation_id"]
    page.reload()
    history = re.compile(r"/messages\?limit=30$")
    held_history: list[Route] = []
    socket = HeldSocket()
    page.route_web_socket(re.compile(r"/ws$"), socket.route)
    page.route(history, lambda route: held_history.append(route))
    with page.expect_request(history):
        open_chat(page, "Racer")
    send_message(page, "Sent before the history arrived")
    users = page.locator("#messages .msg.user .bubble")
    expect(users).to_have_text(["Sent before the history arrived"])
    stored = f"/api/conversations/{conversation}/messages"
    for _ in range(100):  # the server holds the new turn before the history is let through
        if len(page.request.get(stored).json()["items"]) == 4:
            break
        page.wait_for_timeout(50)
    held_history[0].continue_()
    page.unroute(history)
    # The history already holds the new turn, the ack has not come: for now it shows twice.
    expect(users).to_have_count(3)
    socket.release()
    expect(users).to_have_text(["Earlier message", "Sent before the history arrived"])
    expect(replies(page)).to_have_count(2)
    expect(last_reply(page)).to_have_text("Hello from the fake model.")
    expect(page.locator("#messages .msg-status:visible")).to_have_count(0)


def test_long_history_loads_older_pages_on_scroll_up(page: Page) -> None:
    open_dashboard(page)
    agent = api_agent(page, name="Historian")
    conversation = api_chat(page, agent["id"], "Message 01")["conversation_id"]
    for n in range(2, 41):
        api_chat(page, agent["id"], f"Message {n:02d}", conversation)
    page.reload()
    open_chat(page, "Historian")
    users = page.locator("#messages .msg.user .bubble")
    expect(users.last).to_have_text("Message 40")
    expect(users).to_have_count(15)  # the latest page: 30 messages
    older = page.get_by_role("button", name="Load older messages")
    expect(older).to_be_attached()

    log = page.get_by_role("log")
    log.evaluate("el => { el.scrollTop = 0; }")  # scrolling up loads the page before
    expect(users).to_have_count(30)
    log.evaluate("el => { el.scrollTop = 0; }")
    expect(users).to_have_count(40)
    expect(older).to_be_hidden()
    expected = [f"Message {n:02d}" for n in range(1, 41)]
    expect(users).to_have_text(expected)  # in order, none twice
    screenshot(page, "09-long-history")
