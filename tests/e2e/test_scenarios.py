"""The seed's scenarios in a real browser: a first visit, a returning visit, a dropped socket."""

from __future__ import annotations

import itertools
import json
import re

from playwright.sync_api import Page, WebSocketRoute, expect

from agentplatform.api.deps import SESSION_COOKIE
from tests.e2e.conftest import ContextFactory, screenshot
from tests.e2e.dashboard import (
    STREAM_RECORDER,
    api_agent,
    api_chat,
    card,
    last_reply,
    open_chat,
    open_dashboard,
    replies,
    send_message,
    session_user,
    wait_reply_done,
)
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.server import Script


def test_scenario_1_a_first_agent_and_a_streamed_reply(
    page: Page, fake_anthropic: FakeAnthropic
) -> None:
    guests: list[str] = []
    page.on("request", lambda r: guests.append(r.method) if "/api/auth/guest" in r.url else None)
    open_dashboard(page)
    assert guests == ["POST"]  # the guest session was made silently, once
    expect(page.get_by_role("heading", name="No agents yet")).to_be_visible()
    screenshot(page, "01-first-visit-empty")

    page.get_by_role("button", name="Create your first agent").click()
    dialog = page.get_by_role("dialog", name="New agent")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Name", exact=True).fill("Research helper")
    dialog.get_by_label("Description").fill("Finds papers and sums them up in plain words.")
    dialog.get_by_label("Tags").fill("research, Writing")
    dialog.get_by_label("Icon").fill("book-open")
    dialog.get_by_label("Color", exact=True).fill("#0E9F6E")
    dialog.get_by_label("Instructions").fill("Answer briefly.")
    expect(dialog.get_by_label("Model")).to_have_value("anthropic:claude-sonnet-4-6")
    models = page.request.get("/api/models").json()["items"]
    demos = [m["id"] for m in models if m["offline_demo"]]
    offline = dialog.locator('optgroup[label="Offline demo"] option')
    expect(offline).to_have_count(len(demos))  # the offline demo model is labelled as such
    for option in offline.all():
        expect(option).to_contain_text("Offline demo")
    screenshot(page, "02-create-agent-modal")
    dialog.get_by_role("button", name="Create agent").click()

    expect(dialog).to_be_hidden()
    helper = card(page, "Research helper")
    expect(helper).to_be_visible()
    expect(helper.locator(".tag")).to_have_text(["research", "writing"])
    expect(helper.locator(".model")).to_have_text("Claude Sonnet 4.6")
    expect(helper.locator(".total-runs")).to_have_text("0")
    expect(page.get_by_text("Created “Research helper”.")).to_be_visible()
    screenshot(page, "03-agent-card")

    open_chat(page, "Research helper")
    box = page.get_by_role("textbox", name="Message")
    expect(box).to_be_focused()
    box.fill("Hello")
    box.press("Shift+Enter")  # a new line, not a send
    box.press_sequentially("there")
    expect(box).to_have_value("Hello\nthere")
    expect(page.locator("#messages .msg")).to_have_count(0)

    words = ["Papers ", "worth ", "reading: ", "**three** ", "of ", "them, ", "all ", "short."]
    fake_anthropic.push(Script(text=words, first_token_delay=0.2, token_delay=0.15))
    page.evaluate(STREAM_RECORDER)
    box.press("Enter")
    expect(page.locator("#messages .msg.user .bubble")).to_have_text("Hello\nthere")
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    expect(last_reply(page)).to_contain_text("Papers worth")
    expect(last_reply(page)).not_to_contain_text("short.")  # still being written
    screenshot(page, "04-chat-streaming")
    wait_reply_done(page)
    expect(last_reply(page)).to_have_text("Papers worth reading: three of them, all short.")
    expect(last_reply(page).locator("strong")).to_have_text("three")

    snapshots: list[str] = page.evaluate("window.__snapshots")
    assert len(snapshots) >= 4, snapshots  # it grew in steps, not all at once
    assert all(b.startswith(a) for a, b in itertools.pairwise(snapshots))
    assert snapshots[-1] == "Papers worth reading: three of them, all short."

    expect(helper.locator(".total-runs")).to_have_text("1")
    expect(helper.locator(".successful-runs")).to_have_text("1")
    screenshot(page, "05-chat-done-counts-updated")


REPLY = (
    "Welcome back! Here is where we left off:\n\n"
    "1. **Reading list**: three papers on retrieval\n"
    "2. *Notes* on the second one\n\n"
    "```python\nsummary = summarise(papers[:3])\n```\n\n"
    "More at [the project page](https://example.org/papers)."
)


def test_scenario_2_a_returning_visit_is_signed_in_with_its_agents_and_history(
    new_context: ContextFactory, fake_anthropic: FakeAnthropic
) -> None:
    context = new_context()
    page = context.new_page()
    open_dashboard(page)
    me = session_user(page)
    api_agent(page, name="Code reviewer", icon="code", color="#0E7490", tags=["code"])
    api_agent(page, name="Travel planner", icon="globe", color="#C2410C", tags=["travel"])
    agent = api_agent(
        page,
        name="Returning agent",
        description="Remembers what you talked about last time.",
        icon="book-open",
        color="#7C3AED",
        tags=["memory", "research"],
    )
    fake_anthropic.push(Script(text=[REPLY[:40], REPLY[40:]]))
    api_chat(page, agent["id"], "Do you remember me?")
    page.reload()
    expect(card(page, "Returning agent").locator(".total-runs")).to_have_text("1")
    open_chat(page, "Returning agent")
    expect(page.locator("#messages .msg.user .bubble")).to_have_text(["Do you remember me?"])

    # The browser is closed and opened again: only its cookies and storage come back.
    state = context.storage_state()
    assert [c["name"] for c in state["cookies"]] == [SESSION_COOKIE]
    assert all(c["httpOnly"] for c in state["cookies"])
    token = state["cookies"][0]["value"]
    stored = json.dumps(state["origins"])
    assert token not in stored  # no session token in localStorage
    context.close()

    again = new_context(storage_state=state).new_page()
    calls: list[str] = []
    again.on("request", lambda r: calls.append(f"{r.method} {r.url}"))
    open_dashboard(again)
    assert not [c for c in calls if "/api/auth/guest" in c]  # signed in silently, no new guest
    assert session_user(again) == me
    assert again.evaluate("document.cookie").find(SESSION_COOKIE) == -1
    expect(again.locator(".card h3")).to_have_text(
        ["Returning agent", "Travel planner", "Code reviewer"]
    )
    # The last chat opens again by itself, with its history, Markdown and all.
    expect(again.locator("#chat-title")).to_have_text("Returning agent")
    expect(again.locator("#messages .msg.user .bubble")).to_have_text(["Do you remember me?"])
    expect(replies(again)).to_have_count(1)
    reply = last_reply(again)
    expect(reply.locator("ol li")).to_have_count(2)
    expect(reply.locator("strong")).to_have_text("Reading list")
    expect(reply.locator("pre code")).to_have_text("summary = summarise(papers[:3])")
    link = reply.get_by_role("link", name="the project page")
    expect(link).to_have_attribute("href", "https://example.org/papers")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(link).to_have_attribute("target", "_blank")
    screenshot(again, "06-returning-visit")


def test_a_socket_dropped_mid_reply_recovers_the_whole_text_exactly_once(
    page: Page, fake_anthropic: FakeAnthropic
) -> None:
    """The page's socket is cut after 5 deltas, and reconnects are refused until allowed."""
    sockets: list[WebSocketRoute] = []
    sent: list[str] = []
    state = {"delivered": 0, "dropped": False, "allow": False}

    def first_socket(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()

        def to_page(message: str | bytes) -> None:
            if state["dropped"]:
                return
            ws.send(message)
            if json.loads(message).get("type") == "delta":
                state["delivered"] += 1
                if state["delivered"] == 5:  # cut both ways, as a network failure would
                    state["dropped"] = True
                    ws.close(code=4000, reason="network dropped")
                    server.close()

        server.on_message(to_page)
        ws.on_message(server.send)

    def later_socket(ws: WebSocketRoute) -> None:
        if not state["allow"]:
            ws.close(code=4001, reason="still unreachable")
            return
        server = ws.connect_to_server()
        server.on_message(ws.send)

        def to_server(message: str | bytes) -> None:
            sent.append(str(message))
            server.send(message)

        ws.on_message(to_server)

    def route(ws: WebSocketRoute) -> None:
        sockets.append(ws)
        (first_socket if len(sockets) == 1 else later_socket)(ws)

    page.route_web_socket(re.compile(r"/ws$"), route)
    open_dashboard(page)
    api_agent(page, name="Steady")
    page.reload()
    open_chat(page, "Steady")

    words = [f"word{i:02d} " for i in range(30)]
    fake_anthropic.push(Script(text=words, first_token_delay=0.1, token_delay=0.06))
    send_message(page, "Tell me thirty words")
    expect(page.locator("#conn")).to_have_text("Reconnecting…")
    expect(last_reply(page)).to_have_text("".join(words[:5]).strip())
    screenshot(page, "07-reconnecting")

    state["allow"] = True
    expect(page.locator("#conn")).to_be_hidden(timeout=15_000)
    wait_reply_done(page)
    full = "".join(words).strip()
    expect(last_reply(page)).to_have_text(full)
    expect(replies(page)).to_have_count(1)
    resumes = [json.loads(m) for m in sent if '"resume"' in m]
    assert [r["after_seq"] for r in resumes] == [5], sent
    expect(card(page, "Steady").locator(".successful-runs")).to_have_text("1")

    page.reload()  # what was stored is the same text, once
    expect(page.locator("#chat-title")).to_have_text("Steady")
    expect(last_reply(page)).to_have_text(full)
    expect(replies(page)).to_have_count(1)
