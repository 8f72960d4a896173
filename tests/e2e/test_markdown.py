"""The dashboard's Markdown renderer, run in the browser on inputs and the HTML they become."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.e2e.dashboard import open_dashboard

RENDER = """
async (cases) => {
  const { renderMarkdown } = await import('/static/markdown.js');
  return cases.map((text) => {
    const box = document.createElement('div');
    box.append(renderMarkdown(text));
    return box.innerHTML;
  });
}
"""

LINK = 'rel="noopener noreferrer" target="_blank"'
CASES = [
    ("plain text", "<p>plain text</p>"),
    ("two\nlines", "<p>two<br>lines</p>"),
    ("para one\n\npara two", "<p>para one</p><p>para two</p>"),
    (
        "**bold** and *it* and _it_ and ~~gone~~",
        ("<p><strong>bold</strong> and <em>it</em> and <em>it</em> and <del>gone</del></p>"),
    ),
    ("snake_case_name stays", "<p>snake_case_name stays</p>"),
    ("`a <b> c`", "<p><code>a &lt;b&gt; c</code></p>"),
    ("```js\nlet a = '<i>';\n```", "<pre><code data-lang=\"js\">let a = '&lt;i&gt;';</code></pre>"),
    ("```\nunclosed fence", "<pre><code>unclosed fence</code></pre>"),
    ("# Title", "<h3>Title</h3>"),
    ("###### Deep", "<h6>Deep</h6>"),
    ("- a\n- b", "<ul><li>a</li><li>b</li></ul>"),
    ("3. c\n4. d", '<ol start="3"><li>c</li><li>d</li></ol>'),
    ("- a\n  - nested", "<ul><li>a<ul><li>nested</li></ul></li></ul>"),
    ("> quoted\n> more", "<blockquote><p>quoted<br>more</p></blockquote>"),
    ("---", "<hr>"),
    (
        "| a | b |\n|---|:-:|\n| 1 | 2 |",
        (
            '<div class="md-table"><table><thead><tr><th scope="col">a</th><th scope="col">b</th>'
            "</tr></thead><tbody><tr><td>1</td><td>2</td></tr></tbody></table></div>"
        ),
    ),
    (
        "[site](https://example.org/a?b=1)",
        f'<p><a href="https://example.org/a?b=1" {LINK}>site</a></p>',
    ),
    (
        "mail [me](mailto:a@example.org)",
        f'<p>mail <a href="mailto:a@example.org" {LINK}>me</a></p>',
    ),
    (
        "see https://example.org/x.",
        f'<p>see <a href="https://example.org/x" {LINK}>https://example.org/x</a>.</p>',
    ),
    (
        "<https://example.org>",
        f'<p><a href="https://example.org/" {LINK}>https://example.org</a></p>',
    ),
    ("[bad](javascript:alert(1))", "<p>[bad](javascript:alert(1))</p>"),
    ("[rel](/api/agents)", "<p>[rel](/api/agents)</p>"),
    (
        "![cat](https://example.org/cat.png)",
        (
            f'<p><a href="https://example.org/cat.png" {LINK} class="md-image" '
            'title="https://example.org/cat.png">Image: cat</a></p>'
        ),
    ),
    ("<b>not bold</b>", "<p>&lt;b&gt;not bold&lt;/b&gt;</p>"),
    ("&amp; stays", "<p>&amp;amp; stays</p>"),
]


def test_markdown_renders_a_safe_subset(page: Page) -> None:
    open_dashboard(page)
    rendered = page.evaluate(RENDER, [text for text, _ in CASES])
    wrong = [
        f"{text!r}\n  got:  {got}\n  want: {want}"
        for (text, want), got in zip(CASES, rendered, strict=True)
        if got != want
    ]
    assert not wrong, "\n".join(wrong)


def test_markdown_survives_pathological_input(page: Page) -> None:
    open_dashboard(page)
    nasty = [
        "*" * 5000,
        "[" * 3000 + "](",
        ">" * 2000 + " deep",
        "- " * 2000,
        "`" * 4001,
        "| a |\n|---|\n" + "| x |\n" * 2000,
        "**a" * 2000,
    ]
    timings = page.evaluate(
        """async (cases) => {
             const { renderMarkdown } = await import('/static/markdown.js');
             return cases.map((text) => { const t0 = performance.now();
               renderMarkdown(text); return performance.now() - t0; });
           }""",
        nasty,
    )
    assert max(timings) < 500, timings
