"""Agent cards and the agent form: validation, server errors, delete, filters, keyboard, i18n."""

from __future__ import annotations

from playwright.sync_api import Page, Route, expect

from tests.e2e.conftest import ContextFactory, screenshot
from tests.e2e.dashboard import api_agent, card, open_dashboard, same_origin

LABELLED = """
() => [...document.querySelectorAll('button, input, select, textarea, [role="log"]')]
  .filter((el) => el.offsetParent !== null || el.closest('dialog[open]'))
  .filter((el) => el.type !== 'hidden')
  .filter((el) => {
    const by = el.getAttribute('aria-labelledby');
    const name = el.getAttribute('aria-label')
      || (by && by.split(' ').map((id) => document.getElementById(id)?.textContent).join(' '))
      || [...(el.labels || [])].map((l) => l.textContent).join(' ')
      || (el.tagName === 'BUTTON' && el.textContent)
      || el.title;
    return !(name || '').trim();
  })
  .map((el) => el.outerHTML.slice(0, 120))
"""


def test_client_validation_mirrors_the_server(page: Page) -> None:
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    open_dashboard(page)
    posts.clear()
    page.get_by_role("button", name="New agent").click()
    dialog = page.get_by_role("dialog", name="New agent")
    dialog.get_by_label("Name", exact=True).fill("   ")
    dialog.get_by_label("Description").fill("d" * 2001)
    dialog.get_by_label("Tags").fill(", ".join(f"tag{i}" for i in range(17)))
    dialog.get_by_label("Color", exact=True).fill("blue")
    dialog.get_by_label("Icon").fill("Not an icon!")
    dialog.get_by_label("Temperature").fill("2.5")
    dialog.get_by_label("Instructions").fill("i" * 20_001)
    dialog.get_by_role("button", name="Create agent").click()

    expect(dialog.get_by_role("alert")).to_have_text("Please fix the highlighted fields.")
    errors = {
        "name": "Enter a name.",
        "description": "Use at most 2000 characters (now 2001).",
        "tags": "Use at most 16 tags.",
        "color": "Use a hex color like #6366F1.",
        "icon": "Use an icon name (a\u2013z, 0\u20139, -) or a short emoji.",
        "temperature": "Use a number from 0 to 2.",
        "instructions": "Use at most 20000 characters (now 20001).",
    }
    for field, message in errors.items():
        expect(dialog.locator(f"#err-{field}")).to_have_text(message)
        expect(dialog.locator(f"#f-{field}")).to_have_attribute("aria-invalid", "true")
    expect(dialog.get_by_label("Name", exact=True)).to_be_focused()
    screenshot(page, "10-validation-errors")
    assert posts == []  # nothing was sent

    dialog.get_by_label("Name", exact=True).fill("x" * 81)
    dialog.get_by_label("Tags").fill("ok, " + "t" * 33)
    dialog.get_by_role("button", name="Create agent").click()
    expect(dialog.locator("#err-name")).to_have_text("Use at most 80 characters (now 81).")
    expect(dialog.locator("#err-tags")).to_contain_text("Each tag must be 1\u201332 characters")
    dialog.get_by_label("Name", exact=True).fill("Valid now")
    expect(dialog.locator("#err-name")).to_be_hidden()  # cleared while typing


def test_server_errors_are_shown_next_to_their_fields(page: Page) -> None:
    open_dashboard(page)
    # A genuine error envelope from this server, for a body the form itself would never send.
    refused = page.request.post(
        "/api/agents", data={"name": " ", "color": "blue"}, headers=same_origin(page)
    )
    assert refused.status == 422
    envelope = refused.text()
    assert {tuple(d["loc"]) for d in refused.json()["error"]["details"]} == {
        ("body", "name"),
        ("body", "color"),
    }

    def answer_with_it(route: Route) -> None:
        if route.request.method == "POST":
            route.fulfill(status=422, content_type="application/json", body=envelope)
        else:
            route.continue_()

    page.route("**/api/agents", answer_with_it)
    page.get_by_role("button", name="New agent").click()
    dialog = page.get_by_role("dialog", name="New agent")
    dialog.get_by_label("Name", exact=True).fill("Looks fine")
    dialog.get_by_role("button", name="Create agent").click()
    expect(dialog.locator("#err-name")).to_contain_text("The server did not accept this:")
    expect(dialog.locator("#err-name")).to_contain_text("at least 1 character")
    expect(dialog.locator("#err-color")).to_contain_text("should match pattern")
    expect(dialog.locator("#f-color")).to_have_attribute("aria-invalid", "true")
    expect(dialog).to_be_visible()  # kept open, with what was typed
    expect(dialog.get_by_label("Name", exact=True)).to_have_value("Looks fine")


def test_edit_then_delete_with_confirmation(page: Page) -> None:
    open_dashboard(page)
    api_agent(page, name="Short-lived", tags=["temp"])
    page.reload()
    doomed = card(page, "Short-lived")
    doomed.get_by_role("button", name="Edit Short-lived").click()
    dialog = page.get_by_role("dialog", name="Edit agent")
    expect(dialog.get_by_label("Tags")).to_have_value("temp")
    dialog.get_by_label("Name", exact=True).fill("Still short-lived")
    dialog.get_by_role("button", name="Save changes").click()
    doomed = card(page, "Still short-lived")
    expect(doomed).to_be_visible()

    doomed.get_by_role("button", name="Delete Still short-lived").click()
    confirm = page.get_by_role("dialog", name="Delete this agent?")
    expect(confirm).to_contain_text("“Still short-lived” and all of its conversations")
    screenshot(page, "11-delete-confirmation")
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    expect(doomed).to_be_visible()

    doomed.get_by_role("button", name="Delete Still short-lived").click()
    confirm.get_by_role("button", name="Delete").click()
    expect(doomed).to_have_count(0)
    expect(page.get_by_role("heading", name="No agents yet")).to_be_visible()
    assert page.request.get("/api/agents").json()["items"] == []


def test_tag_filter_search_and_empty_states(page: Page) -> None:
    open_dashboard(page)
    api_agent(page, name="Alpha writer", description="Drafts essays.", tags=["writing"])
    api_agent(page, name="Beta coder", description="Reviews pull requests.", tags=["code"])
    api_agent(page, name="Gamma editor", description="Polishes essays.", tags=["writing", "code"])
    page.reload()
    names = page.locator(".card h3")
    expect(names).to_have_count(3)

    page.get_by_label("Filter by tag").select_option("writing")
    expect(names).to_have_text(["Gamma editor", "Alpha writer"])
    page.get_by_label("Search agents").fill("polish")
    expect(names).to_have_text(["Gamma editor"])
    expect(page.locator("#agents-status")).to_have_text("1 of 3 agents")
    page.get_by_label("Search agents").fill("nothing like this")
    expect(page.get_by_text("No agent matches your search.")).to_be_visible()
    page.get_by_role("button", name="Clear filters").click()
    expect(names).to_have_count(3)
    chip = card(page, "Beta coder").get_by_role("button", name="code", exact=True)
    chip.click()  # a tag chip filters
    expect(page.get_by_label("Filter by tag")).to_have_value("code")
    expect(names).to_have_text(["Gamma editor", "Beta coder"])
    screenshot(page, "12-filtered-cards")


def test_keyboard_only_and_every_control_labelled(page: Page) -> None:
    open_dashboard(page)
    assert page.evaluate(LABELLED) == []
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to your agents")).to_be_focused()
    for _ in range(6):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "new-agent":
            break
    expect(page.get_by_role("button", name="New agent")).to_be_focused()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="New agent")
    expect(dialog.get_by_label("Name", exact=True)).to_be_focused()
    assert page.evaluate(LABELLED) == []
    page.keyboard.type("Keyboard agent")
    page.keyboard.press("Enter")  # submits the form
    expect(dialog).to_be_hidden()
    chat = page.get_by_role("button", name="Chat with Keyboard agent")
    expect(chat).to_be_focused()
    page.keyboard.press("Enter")
    box = page.get_by_role("textbox", name="Message")
    expect(box).to_be_focused()
    page.keyboard.type("Typed, not clicked")
    page.keyboard.press("Enter")
    expect(page.locator("#messages .msg.assistant .bubble")).to_have_text(
        "Hello from the fake model."
    )
    assert page.evaluate(LABELLED) == []
    back = page.get_by_role("button", name="Back to agents")
    for _ in range(8):
        page.keyboard.press("Shift+Tab")
        if page.evaluate("document.activeElement.id") == "chat-back":
            break
    expect(back).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#chat")).to_be_hidden()
    expect(chat).to_be_focused()  # focus returns where the person came from


def test_korean_from_the_browser_language_and_the_header_switch(
    new_context: ContextFactory,
) -> None:
    page = new_context(locale="ko-KR").new_page()
    page.goto("/")
    expect(page.get_by_role("heading", name="아직 에이전트가 없습니다")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "ko")
    api_agent(page, name="번역가", description="한국어와 영어를 오갑니다.", tags=["언어"])
    page.reload()
    expect(page.get_by_role("button", name="번역가와(과) 대화")).to_be_visible()
    page.get_by_role("button", name="번역가와(과) 대화").click()
    box = page.get_by_role("textbox", name="메시지")
    box.fill("안녕하세요")
    box.press("Enter")
    expect(page.locator("#messages .msg.assistant .bubble")).to_have_text(
        "Hello from the fake model."
    )
    expect(card(page, "번역가").locator(".total-runs")).to_have_text("1")
    screenshot(page, "13-korean")

    page.get_by_label("언어").select_option("en")
    expect(page.get_by_role("heading", name="Your agents")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.reload()  # the choice is remembered
    expect(page.get_by_role("heading", name="Your agents")).to_be_visible()
    expect(page.get_by_label("Language")).to_have_value("en")
