"""Hostile text in agent fields, user messages, model replies and tool steps runs nothing.

The page is watched three ways: a canary (``window.__pwned``, set by every script payload),
the guard's traps (a dialog, a request to any host but the server, a CSP report or console
violation, an uncaught error), and a look at the DOM (no active element came from the text).
"""

from __future__ import annotations

import unicodedata

from playwright.sync_api import Page, expect

from tests.e2e.conftest import Guard, screenshot
from tests.e2e.dashboard import (
    api_agent,
    api_chat,
    open_chat,
    open_dashboard,
    wait_reply_done,
)
from tests.e2e.xss_corpus import NAMES, PAYLOADS, TAGS
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.server import FakeToolCall, Script

# Elements and attributes that text must never turn into.
DOM_AUDIT = """
() => {
  const roots = [...document.querySelectorAll(
    '#cards, #messages, #convo-list, #chat-title, #chat-hello, #confirm-body, #toasts, ' +
    '#tag-filter, #f-icon-preview, #chat-icon, .field-error, #form-error')];
  const bad = [];
  const forbidden = 'script,iframe,frame,object,embed,img,video,audio,source,style,link,meta,' +
    'base,form,input:not([id]),textarea:not([id]),math,template,marquee,noscript,' +
    'details:not(.tool-step),summary:not(.tool-step > summary)';
  const show = (el) => el.outerHTML.slice(0, 80);
  for (const root of roots) {
    for (const el of root.querySelectorAll(forbidden)) bad.push('element ' + show(el));
    for (const el of root.querySelectorAll('svg:not(.icon)')) bad.push('svg ' + show(el));
  }
  // Our own code sets CSS properties (agent colors, textarea height) through the CSSOM.
  const ours = (el) => el.closest('.avatar, article, textarea');
  for (const el of document.body.querySelectorAll('*')) {
    for (const attr of el.attributes) {
      const styled = attr.name === 'style' && attr.value && !ours(el);
      if (/^on/i.test(attr.name) || styled) {
        bad.push('attribute ' + attr.name + ' on ' + el.tagName + ' ' + attr.value);
      }
      if (/^\\s*(javascript|data|vbscript):/i.test(attr.value) && attr.name !== 'value') {
        bad.push('url ' + attr.name + '=' + attr.value.slice(0, 60));
      }
    }
  }
  for (const a of document.querySelectorAll('#messages a')) {
    if (!/^(https?:|mailto:)/.test(a.href)) bad.push('href ' + a.href);
    if (a.rel !== 'noopener noreferrer' || a.target !== '_blank') bad.push('rel ' + a.outerHTML);
  }
  return bad;
}
"""


def _valid_tag(tag: str) -> bool:
    return all(not (unicodedata.category(c)[0] in "CZ" and c != " ") for c in tag)


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _open_every_tool_step(page: Page) -> None:
    """Opens the tool steps of the last reply and checks each shows its payload as text."""
    steps = page.locator("#messages .msg.assistant").last.locator("details.tool-step")
    expect(steps).to_have_count(len(PAYLOADS))
    for step in steps.all():
        step.locator("summary").click()
    expect(steps.locator(".tool-error")).to_have_count(len(PAYLOADS))
    shown = steps.evaluate_all(
        """(all) => all.map((d) => [d.open, d.querySelector('.tool-title').textContent,
                                   JSON.parse(d.querySelector('.tool-args').textContent),
                                   d.querySelector('.tool-result').textContent])"""
    )
    for (is_open, title, arguments, result), payload in zip(shown, PAYLOADS, strict=True):
        assert is_open
        assert title == f"Used {payload}"
        assert arguments == {"input": payload, "nested": {"list": [payload]}}
        assert result.startswith("There is no tool named ")
        assert repr(payload) in result  # the server quotes the name it does not know


def test_the_payload_corpus_executes_nothing_and_fetches_nothing(
    page: Page, guard: Guard, fake_anthropic: FakeAnthropic
) -> None:
    assert len(PAYLOADS) >= 50
    open_dashboard(page)
    tags = [t for t in TAGS if _valid_tag(t)]
    agents = [
        api_agent(
            page,
            name=name.strip()[:80],
            description=name,
            tags=[tags[i % len(tags)]],
            instructions=name,
            icon="robot",
            tools=["calculator"],  # with a tool, the model's tool calls are acted on
        )
        for i, name in enumerate(NAMES)
    ]
    target = agents[0]
    # Past turns: every payload as a user message and as a model reply.
    conversation = None
    for group in _chunks(PAYLOADS, 6):
        text = "\n\n".join(group)
        fake_anthropic.push(Script(text=[text[: len(text) // 2], text[len(text) // 2 :]]))
        conversation = api_chat(page, target["id"], text, conversation)["conversation_id"]

    page.reload()
    expect(page.locator(".card")).to_have_count(len(agents))
    screenshot(page, "14-xss-cards", full_page=False)
    page.locator(f'.card[data-id="{target["id"]}"] .chat-btn').click()
    expect(page.locator("#chat-title")).to_have_text(target["name"])
    expect(page.locator("#messages .msg")).to_have_count(2 * len(_chunks(PAYLOADS, 6)))

    # A live turn: typed by hand, the model calls a tool named after every payload, with the
    # payload as its argument (each result, "There is no tool named …", quotes it back), then
    # the reply streams payload by payload.
    calls = [FakeToolCall(p, {"input": p, "nested": {"list": [p]}}) for p in PAYLOADS]
    fake_anthropic.push(
        Script(text=[PAYLOADS[0]], tool_calls=calls),
        Script(text=[p + "\n\n" for p in PAYLOADS], token_delay=0.005),
    )
    box = page.locator("#message")
    box.fill("\n".join(PAYLOADS[:8]))
    box.press("Enter")
    wait_reply_done(page)
    expect(page.locator("#messages .msg.assistant").last).to_contain_text(PAYLOADS[-1][:20])
    expect(page.locator("#messages")).to_contain_text("<script>window.__pwned=1</script>")
    screenshot(page, "15-xss-chat")
    _open_every_tool_step(page)

    # The same turn again from history: its tool steps come from the stored parts.
    page.get_by_role("button", name="Conversations").click()
    page.locator("#convo-list .convo-open").first.click()
    expect(page.locator("#messages .msg")).to_have_count(2 * len(_chunks(PAYLOADS, 6)) + 2)
    _open_every_tool_step(page)

    page.get_by_role("button", name="Conversations").click()
    expect(page.locator("#convo-list .convo")).to_have_count(1)
    page.get_by_role("button", name="Conversations").click()

    # The same text inside the form, the confirmation, the filter and the search.
    page.locator(f'.card[data-id="{target["id"]}"] [data-action="edit"]').click()
    expect(page.locator("#f-name")).to_have_value(target["name"])
    page.get_by_role("button", name="Cancel").first.click()
    page.locator(f'.card[data-id="{target["id"]}"] [data-action="delete"]').click()
    expect(page.locator("#confirm-body")).to_contain_text(target["name"])
    page.locator("#confirm-dialog").get_by_role("button", name="Cancel").click()
    page.get_by_label("Filter by tag").select_option(tags[0])
    page.get_by_label("Search agents").fill(PAYLOADS[4])
    page.get_by_label("Search agents").fill("")
    page.get_by_label("Filter by tag").select_option("")

    assert page.evaluate("window.__pwned") is None
    audit = page.evaluate(DOM_AUDIT)
    assert audit == [], "\n".join(audit)
    assert guard.violations() == []


def test_the_page_is_served_with_a_strict_policy_and_breaks_none_of_it(page: Page) -> None:
    response = page.goto("/")
    assert response is not None
    headers = response.headers
    assert headers["content-security-policy"] == (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    )
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    expect(page.locator("#who")).to_have_attribute("data-state", "signed-in")
    # Everything the dashboard does under that policy: open a chat, stream, open the modal.
    api_agent(page, name="Policy check")
    page.reload()
    open_chat(page, "Policy check")
    page.locator("#message").fill("hello")
    page.locator("#message").press("Enter")
    wait_reply_done(page)
    page.get_by_role("button", name="New agent").click()
    expect(page.get_by_role("dialog", name="New agent")).to_be_visible()
    page.keyboard.press("Escape")
    # The guard fixture fails the test on any CSP report or console violation seen here.


def test_an_injected_inline_script_would_be_blocked_and_noticed(page: Page, guard: Guard) -> None:
    """The canary works: the same trap the other tests rely on catches a real violation."""
    open_dashboard(page)
    with page.expect_console_message(lambda m: "Content Security Policy" in m.text) as seen:
        page.evaluate(
            """() => { const s = document.createElement('script');
                       s.textContent = 'window.__pwned = 1'; document.body.append(s); }"""
        )
    page.wait_for_function("window.__csp.length > 0")
    assert page.evaluate("window.__pwned") is None  # the policy refused the inline script
    assert "script-src" in seen.value.text
    assert any("script-src" in v for v in guard.violations())
    # Expected here, so not a failure of this test.
    page.evaluate("window.__csp.length = 0")
    guard.csp_messages.clear()
    guard.csp_reports.clear()
