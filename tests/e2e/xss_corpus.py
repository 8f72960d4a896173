"""Hostile text for the injection tests: HTML, attribute and URL tricks, Markdown link abuse.

Each payload, if it ever ran, would set ``window.__pwned``, open a dialog, or make the browser
ask a host that is not the test server for something (``evil.example`` never resolves, but the
attempt is seen). A safe page shows all of them as plain text.
"""

from __future__ import annotations

EVIL = "https://evil.example"

PAYLOADS: list[str] = [
    "<script>window.__pwned=1</script>",
    '"><script>window.__pwned=1</script>',
    "</textarea><script>window.__pwned=1</script>",
    "</title><script>alert(1)</script>",
    "<img src=x onerror=window.__pwned=1>",
    '<img src="x" onerror="alert(1)">',
    f"<img src={EVIL}/pixel.png>",
    "<svg onload=window.__pwned=1>",
    "<svg><script>window.__pwned=1</script></svg>",
    "<body onload=alert(1)>",
    "<iframe src=javascript:window.__pwned=1></iframe>",
    f'<iframe src="{EVIL}/frame"></iframe>',
    "<iframe srcdoc='<script>parent.__pwned=1</script>'></iframe>",
    "<object data=javascript:window.__pwned=1></object>",
    f'<embed src="{EVIL}/x.swf">',
    "<details open ontoggle=window.__pwned=1>",
    "<input autofocus onfocus=window.__pwned=1>",
    "<select autofocus onfocus=alert(1)></select>",
    "<video><source onerror=window.__pwned=1></video>",
    "<audio src=x onerror=alert(1)>",
    "<marquee onstart=window.__pwned=1>",
    f'<link rel=stylesheet href="{EVIL}/x.css">',
    f"<style>@import '{EVIL}/x.css';</style>",
    f"<div style=\"background:url('{EVIL}/bg.png')\">styled</div>",
    f'<meta http-equiv="refresh" content="0;url={EVIL}">',
    f'<base href="{EVIL}/">',
    f'<form action="{EVIL}"><button>go</button></form>',
    '<a href="javascript:window.__pwned=1">click</a>',
    "<math><mtext><table><mglyph><style><img src=x onerror=window.__pwned=1>",
    '<noscript><p title="</noscript><img src=x onerror=window.__pwned=1>">',
    "<template><img src=x onerror=window.__pwned=1></template>",
    "{{constructor.constructor('window.__pwned=1')()}}",
    "${alert(1)}",
    "javascript:window.__pwned=1",
    "&lt;script&gt;window.__pwned=1&lt;/script&gt;",
    "&#60;img src=x onerror=window.__pwned=1&#62;",
    "\u003cimg src=x onerror=window.__pwned=1\u003e",
    "[click me](javascript:window.__pwned=1)",
    "[click me](JaVaScRiPt:alert(1))",
    "[click me]( javascript:alert(1))",
    "[click me](&#106;avascript:alert(1))",
    "[click me](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click me](vbscript:msgbox(1))",
    f"[click me](//{EVIL[8:]}/x)",
    f'[click me]({EVIL}/ok "title") is a plain link',
    f"![tracking pixel]({EVIL}/pixel.gif)",
    "![x](javascript:window.__pwned=1)",
    "![x](data:image/svg+xml,<svg onload=alert(1)>)",
    f"<{EVIL}/autolink>",
    "<javascript:window.__pwned=1>",
    f"[![nested]({EVIL}/img.png)]({EVIL}/page)",
    "**<img src=x onerror=window.__pwned=1>**",
    "`<script>window.__pwned=1</script>`",
    "```html\n<script>window.__pwned=1</script>\n<img src=x onerror=alert(1)>\n```",
    "> <img src=x onerror=window.__pwned=1>",
    "| a | b |\n|---|---|\n| <script>window.__pwned=1</script> | <img src=x onerror=alert(1)> |",
    "- <svg/onload=window.__pwned=1>\n- [x](javascript:alert(1))",
    "# <iframe src=javascript:alert(1)>",
    "\u202e<script>window.__pwned=1</script>",
    "<scr<script>ipt>window.__pwned=1</scr</script>ipt>",
]

# Short, single-line payloads that pass the server's rules for names and tags.
NAMES = [p for p in PAYLOADS if "\n" not in p and len(p.strip()) <= 80 and p.strip()]
TAGS = [p.lower() for p in PAYLOADS if "\n" not in p and len(p) <= 32 and p == p.strip()]
