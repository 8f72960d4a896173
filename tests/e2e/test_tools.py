"""Agents with tools on the dashboard: the form's tool picker, and tool steps in the chat.

The fake model is scripted to call tools; the tools themselves are the server's real ones:
``calculator``, and ``http_fetch`` reading the e2e docs site (the one loopback address the
server's allow-list opens).
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from playwright.sync_api import Page, Route, expect

from tests.e2e.conftest import ContextFactory, screenshot
from tests.e2e.dashboard import (
    STREAMING,
    TEXT_RECORDER,
    api_agent,
    api_chat,
    bubble_layout,
    card,
    open_chat,
    open_dashboard,
    record_sent_frames,
    replies,
    reply_texts,
    send_message,
    tool_steps,
    wait_reply_done,
)
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.server import FakeToolCall, Script

ANSWER = ["Six ", "widgets ", "cost ", "**42** ", "euros ", "in ", "all."]


def _agent_by_name(page: Page, name: str) -> dict[str, Any]:
    items = page.request.get("/api/agents").json()["items"]
    agent: dict[str, Any] = next(a for a in items if a["name"] == name)
    return agent


def test_scenario_3_an_agent_with_tools_shows_its_steps_folded_live_and_from_history(
    page: Page, fake_anthropic: FakeAnthropic, docs_site: str
) -> None:
    open_dashboard(page)
    offered = page.request.get("/api/tools").json()["items"]
    assert {"calculator", "http_fetch"} <= {t["name"] for t in offered}

    # The form: every tool the server offers is a checkbox; the unavailable ones are disabled.
    page.get_by_role("button", name="Create your first agent").click()
    dialog = page.get_by_role("dialog", name="New agent")
    dialog.get_by_label("Name", exact=True).fill("Shopper")
    dialog.get_by_label("Instructions").fill("Look prices up, then do the sums.")
    tools = dialog.get_by_role("group", name="Tools")
    expect(tools.get_by_role("checkbox")).to_have_count(len(offered))
    for tool in offered:
        box = tools.get_by_role("checkbox", name=tool["name"], exact=True)
        expect(box).not_to_be_checked()
        if tool["available"]:
            expect(box).to_be_enabled()
        else:
            expect(box).to_be_disabled()
            expect(box).to_have_accessible_description(re.compile(re.escape(tool["reason"])))
    expect(dialog.get_by_label("Max steps")).to_have_value("8")
    tools.get_by_role("checkbox", name="calculator", exact=True).check()
    tools.get_by_role("checkbox", name="http_fetch", exact=True).check()
    dialog.get_by_label("Max steps").fill("4")
    dialog.get_by_role("button", name="Create agent").click()
    expect(dialog).to_be_hidden()
    agent = _agent_by_name(page, "Shopper")
    assert (agent["tools"], agent["max_steps"]) == (["calculator", "http_fetch"], 4)

    # A question that needs both tools: read the price list, then multiply.
    open_chat(page, "Shopper")
    prices = f"{docs_site}/prices"
    fake_anthropic.push(
        Script(
            text=["Let me look the price up. "],
            tool_calls=[FakeToolCall("http_fetch", {"url": prices})],
        ),
        Script(tool_calls=[FakeToolCall("calculator", {"expression": "6*7"})]),
        Script(text=ANSWER, first_token_delay=0.8, token_delay=0.15),
    )
    page.evaluate(TEXT_RECORDER)
    send_message(page, f"How much do 6 widgets cost? The price list is at {prices}")
    reply = replies(page).last
    steps = tool_steps(reply)
    expect(steps.locator("summary")).to_have_text(["Used http_fetch", "Used calculator"])
    expect(reply).to_have_class(STREAMING)  # the steps show before the answer is written
    assert "all." not in reply_texts(reply).all_text_contents()[-1]
    wait_reply_done(page)

    expect(reply_texts(reply)).to_have_text(
        ["Let me look the price up.", "Six widgets cost 42 euros in all."]
    )
    expect(reply_texts(reply).last.locator("strong")).to_have_text("42")
    assert bubble_layout(reply) == ["text", "tool", "tool", "text"]
    for step in steps.all():  # folded: only the summary shows
        expect(step).to_have_js_property("open", False)
        expect(step.locator(".tool-result")).to_be_hidden()
    expect(reply.locator(".tool-error")).to_have_count(0)
    texts: list[str] = page.evaluate("window.__texts")
    assert texts[0].strip() == "Let me look the price up.", texts  # before the steps
    answer = texts[1:]
    assert len(answer) >= 3, texts  # the answer streamed in steps, not all at once
    assert all(b.startswith(a) for a, b in itertools.pairwise(answer)), answer
    assert answer[-1] == "Six widgets cost 42 euros in all."
    live = reply.locator(".bubble").inner_html()
    screenshot(page, "19-tool-steps-folded")

    # The model read both results.
    bodies = [json.dumps(r.body) for r in fake_anthropic.calls("/messages")]
    assert len(bodies) == 3
    assert "One widget costs 7 euros." in bodies[1] and '"42"' in bodies[2]

    # Opening a step shows its arguments (pretty JSON) and its result.
    calculator, fetch = steps.nth(1), steps.nth(0)
    calculator.locator("summary").click()
    expect(calculator).to_have_js_property("open", True)
    expect(calculator.locator(".tool-label")).to_have_text(["Arguments", "Result"])
    expect(calculator.locator(".tool-args")).to_have_text('{\n  "expression": "6*7"\n}')
    expect(calculator.locator(".tool-result")).to_have_text("42")
    screenshot(page, "20-tool-step-expanded")
    fetch.locator("summary").click()
    expect(fetch.locator(".tool-args")).to_have_text(json.dumps({"url": prices}, indent=2))
    expect(fetch.locator(".tool-result")).to_contain_text("Title: Widget prices")
    expect(fetch.locator(".tool-result")).to_contain_text("One widget costs 7 euros.")
    fetch.locator("summary").press("Enter")  # the keyboard folds it again
    expect(fetch).to_have_js_property("open", False)
    expect(card(page, "Shopper").locator(".successful-runs")).to_have_text("1")

    # History shows the very same reply: same steps, same order, folded again.
    page.reload()
    expect(page.locator("#chat-title")).to_have_text("Shopper")
    reply = replies(page).last
    expect(tool_steps(reply).locator("summary")).to_have_text(
        ["Used http_fetch", "Used calculator"]
    )
    assert reply.locator(".bubble").inner_html() == live
    tool_steps(reply).nth(1).locator("summary").click()
    expect(tool_steps(reply).nth(1).locator(".tool-result")).to_have_text("42")
    stored = page.request.get(
        f"/api/conversations/{page.request.get('/api/conversations').json()['items'][0]['id']}"
        "/messages"
    ).json()["items"][-1]
    assert [p["type"] for p in stored["parts"]] == [
        "text",
        "tool_call",
        "tool_result",
        "tool_call",
        "tool_result",
        "text",
    ]


def _tools_with_extras(extras: list[dict[str, Any]]) -> Any:
    """A route handler: the server's real tool list, with ``extras`` appended."""

    def handle(route: Route) -> None:
        response = route.fetch()
        body = response.json()
        body["items"] += extras
        route.fulfill(response=response, json=body)

    return handle


def _tool(name: str, *, available: bool = True, reason: str | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"The {name} tool of a lab server.",
        "parameters": {"type": "object", "properties": {}},
        "available": available,
        "reason": reason,
    }


def test_the_tool_picker_mirrors_the_server_rules(page: Page) -> None:
    open_dashboard(page)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    offline = "the MCP server 'lab' is not reachable"
    extras = [_tool("lab.down", available=False, reason=offline), _tool("lab.ghost")]
    extras += [_tool(f"lab.t{i:02d}") for i in range(31)]
    page.route("**/api/tools", _tools_with_extras(extras))
    page.get_by_role("button", name="New agent").click()
    dialog = page.get_by_role("dialog", name="New agent")
    dialog.get_by_label("Name", exact=True).fill("Picky")
    tools = dialog.get_by_role("group", name="Tools")
    down = tools.get_by_role("checkbox", name="lab.down", exact=True)
    expect(down).to_be_disabled()
    expect(down).to_have_accessible_description(re.compile(f"^Unavailable: {re.escape(offline)}"))

    # More than 32 tools, and a step count out of range: refused before anything is sent.
    for box in tools.get_by_role("checkbox").all():
        if box.is_enabled():
            box.check()
    expect(tools.get_by_role("checkbox", checked=True)).to_have_count(len(extras) - 1 + 4)
    for steps in ("0", "33", "2.5", ""):
        dialog.get_by_label("Max steps").fill(steps)
        dialog.get_by_role("button", name="Create agent").click()
        expect(dialog.locator("#err-max_steps")).to_have_text("Use a whole number from 1 to 32.")
        expect(dialog.get_by_label("Max steps")).to_have_attribute("aria-invalid", "true")
    expect(dialog.locator("#err-tools")).to_have_text("Choose at most 32 tools.")
    expect(dialog.locator("#f-tools")).to_have_attribute("aria-invalid", "true")
    assert not [p for p in posts if p.endswith("/api/agents")]

    # Within the limits, a tool the server does not really have: its refusal shows by the field.
    for box in tools.get_by_role("checkbox").all():
        box.set_checked(False)
    expect(dialog.locator("#err-tools")).to_be_hidden()  # cleared on change
    tools.get_by_role("checkbox", name="calculator", exact=True).check()
    tools.get_by_role("checkbox", name="lab.ghost", exact=True).check()
    dialog.get_by_label("Max steps").fill("32")
    with page.expect_response("**/api/agents") as answer:
        dialog.get_by_role("button", name="Create agent").click()
    assert answer.value.status == 422
    assert answer.value.json()["error"]["details"][0]["loc"] == ["body", "tools"]
    expect(dialog.locator("#err-tools")).to_have_text(
        "The server did not accept this: unknown tools: lab.ghost; see GET /api/tools"
    )
    expect(dialog.locator("#err-max_steps")).to_be_hidden()
    expect(dialog).to_be_visible()
    screenshot(page, "21-tool-picker-errors")

    tools.get_by_role("checkbox", name="lab.ghost", exact=True).uncheck()
    dialog.get_by_role("button", name="Create agent").click()
    expect(dialog).to_be_hidden()
    agent = _agent_by_name(page, "Picky")
    assert (agent["tools"], agent["max_steps"]) == (["calculator"], 32)

    # Editing: the agent's tools are checked; one the server stopped offering stays removable.
    page.unroute("**/api/tools")
    page.route(
        "**/api/tools",
        lambda route: route.fulfill(json={"items": [_tool("current_time")], "next_cursor": None}),
    )
    page.reload()
    card(page, "Picky").get_by_role("button", name="Edit Picky").click()
    dialog = page.get_by_role("dialog", name="Edit agent")
    gone = dialog.get_by_role("checkbox", name="calculator", exact=True)
    expect(gone).to_be_checked()
    expect(gone).to_be_enabled()
    expect(gone).to_have_accessible_description(re.compile("No longer offered by the server"))
    expect(dialog.get_by_label("Max steps")).to_have_value("32")
    with page.expect_response(re.compile(r"/api/agents/")) as saved:
        dialog.get_by_label("Max steps").fill("5")
        dialog.get_by_role("button", name="Save changes").click()
    assert saved.value.request.post_data_json == {"max_steps": 5}  # untouched tools not sent
    expect(dialog).to_be_hidden()


def test_tool_steps_in_korean_with_an_error_mark_and_the_language_switch(
    new_context: ContextFactory, fake_anthropic: FakeAnthropic
) -> None:
    page = new_context(locale="ko-KR").new_page()
    page.goto("/")
    expect(page.get_by_role("heading", name="아직 에이전트가 없습니다")).to_be_visible()
    agent = api_agent(page, name="계산원", tools=["calculator"])
    fake_anthropic.push(
        Script(
            tool_calls=[
                FakeToolCall("calculator", {"expression": "1/0"}),
                FakeToolCall("calculator", {"expression": "6*7"}),
            ]
        ),
        Script(text=["0으로는 나눌 수 없지만, 6 곱하기 7은 42입니다."]),
    )
    api_chat(page, agent["id"], "1/0과 6*7을 계산해 줘")
    page.reload()

    page.get_by_role("button", name="계산원 편집").click()
    dialog = page.get_by_role("dialog", name="에이전트 편집")
    tools = dialog.get_by_role("group", name="도구")
    calculator = tools.get_by_role("checkbox", name="계산기 calculator", exact=True)
    expect(calculator).to_be_checked()
    expect(calculator).to_have_accessible_description(re.compile("수식을 정확하게 계산합니다"))
    expect(dialog.get_by_label("최대 단계")).to_have_value("8")
    page.keyboard.press("Escape")

    page.get_by_role("button", name="계산원와(과) 대화").click()
    reply = replies(page).last
    steps = tool_steps(reply)
    expect(steps.locator("summary")).to_have_text(["계산기 사용 오류", "계산기 사용"])
    expect(steps.nth(0).locator(".tool-error")).to_have_text("오류")
    expect(steps.nth(0)).to_have_class(re.compile(r"\berror\b"))
    expect(steps.nth(1).locator(".tool-error")).to_have_count(0)
    steps.nth(0).locator("summary").click()
    expect(steps.nth(0).locator(".tool-label")).to_have_text(["인수", "결과"])
    expect(steps.nth(0).locator(".tool-result")).to_have_text("Division by zero.")
    expect(reply_texts(reply)).to_have_text(["0으로는 나눌 수 없지만, 6 곱하기 7은 42입니다."])
    screenshot(page, "22-tool-steps-korean")

    page.get_by_label("언어").select_option("en")
    expect(steps.locator(".tool-title")).to_have_text(["Used calculator", "Used calculator"])
    expect(steps.nth(0).locator(".tool-error")).to_have_text("Error")
    expect(steps.nth(0)).to_have_js_property("open", True)  # relabelled in place


def test_a_reply_with_tool_steps_resumed_after_reload_shows_each_step_once(
    page: Page, fake_anthropic: FakeAnthropic
) -> None:
    sent = record_sent_frames(page)
    open_dashboard(page)
    api_agent(page, name="Patient", tools=["calculator"])
    page.reload()
    open_chat(page, "Patient")
    words = [f"step{i} " for i in range(30)]
    fake_anthropic.push(
        Script(
            text=["First, the sum. "],
            tool_calls=[FakeToolCall("calculator", {"expression": "2+2"})],
        ),
        Script(text=words, token_delay=0.1),
    )
    send_message(page, "Add, then talk")
    expect(reply_texts(replies(page).last).last).to_contain_text("step2")
    page.reload()  # mid-answer, after the tool step

    expect(page.locator("#chat-title")).to_have_text("Patient")
    conversation = page.request.get("/api/conversations").json()["items"][0]["id"]
    reply = replies(page).last
    expect(reply).to_have_class(STREAMING)
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    wait_reply_done(page)
    expect(replies(page)).to_have_count(1)
    expect(tool_steps(reply)).to_have_count(1)
    expect(tool_steps(reply).locator("summary")).to_have_text("Used calculator")
    expect(reply_texts(reply)).to_have_text(["First, the sum.", "".join(words).strip()])
    assert bubble_layout(reply) == ["text", "tool", "text"]
    stored = page.request.get(f"/api/conversations/{conversation}/messages").json()["items"][-1]
    resumes = [f for f in sent if f["type"] == "resume"]
    assert resumes == [{"type": "resume", "run_id": stored["run_id"], "after_seq": 0}], sent
