"""The self-contained, offline HTML evidence of a run.

We render the notebook ourselves instead of using an nbconvert template: the
stock templates pull require.js, MathJax and fonts from CDNs and inline about
270 KiB of CSS (FIELD-NOTES). Here nothing is loaded from the network: no
script, no stylesheet link, no external image; outputs' HTML is sanitized.
"""

from __future__ import annotations

import functools
import html
import re
from typing import Any

import nh3

from opsnb.checks.severity import LEVELS, describe

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:16px 24px}
header.run{background:#fff;border:1px solid #d8dce3;border-radius:6px;padding:14px 18px;margin:12px 0}
h1{font-size:20px;margin:0 0 6px} h2{font-size:16px;margin:14px 0 6px}
.badge{display:inline-block;padding:2px 10px;border-radius:12px;color:#fff;font-weight:600}
.PASS{background:#1e7d32}.WARN{background:#b26a00}.FAIL{background:#b3261e}
.ERROR,.TIMEOUT,.KERNEL-DIED,.INTERRUPTED{background:#5b2a86}
table{border-collapse:collapse;margin:6px 0;font-size:13px} td,th{border:1px solid #d8dce3;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef0f4} .sev-P0,.sev-P1{color:#b3261e;font-weight:600}.sev-P2,.sev-P3{color:#b26a00;font-weight:600}
.cell{background:#fff;border:1px solid #e3e6eb;border-radius:4px;margin:10px 0;padding:6px 12px}
.cell.failed{border:2px solid #b3261e}
pre{white-space:pre-wrap;word-break:break-word;margin:4px 0;font:12.5px/1.4 ui-monospace,Menlo,Consolas,monospace}
pre.src{background:#f3f4f7;padding:6px} pre.err{background:#fdecea;padding:6px}
.out img{max-width:100%} .muted{color:#667085}
.out{overflow-x:auto;max-width:100%} .out td{max-width:42em;overflow-wrap:anywhere;white-space:pre-wrap}
header.run{overflow-x:auto} header.run td{overflow-wrap:anywhere}
"""

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Outputs' HTML and rendered markdown go through ammonia (nh3), an HTML5
# parser-based allowlist sanitizer: regexes cannot see HTML the way a browser
# parses it (nested or split tags, entities, odd whitespace) and they mangled
# honest prose such as "NEXTAUTH_URL (AUTH_URL in v5)". Only what a report
# shows is allowed: text formatting, lists, headings, links, inline figures
# and the tables pandas writes. No style (CSS can fetch URLs), no ids (they
# would clash with the report's own #cell-N anchors), no forms, frames or
# embeds, and no tag that runs or loads anything.
_ALLOWED_TAGS = {
    *("table", "caption", "thead", "tbody", "tfoot", "tr", "th", "td"),
    *("p", "div", "span", "pre", "code", "blockquote", "br", "hr"),
    *("b", "strong", "i", "em", "sub", "sup", "del", "s"),
    *("ul", "ol", "li", "h1", "h2", "h3", "h4", "h5", "h6"),
    *("a", "img", "details", "summary"),
}
_CELL_ATTRIBUTES = {"colspan", "rowspan", "align", "valign", "halign"}  # pandas' MultiIndex layout
_ALLOWED_ATTRIBUTES = {
    "table": {"border", "class"},
    "th": _CELL_ATTRIBUTES,
    "td": _CELL_ATTRIBUTES,
    "ol": {"start"},
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "details": {"open"},
}
# Classes are limited so an output cannot dress itself up as the report's own
# badges or severity cells; pandas' "dataframe" is the one a table needs. This
# is done in _keep_attribute because nh3's allowed_classes only came in 0.3.
_ALLOWED_CLASSES = {"table": {"dataframe"}}
# Dropped with their content: code or markup that is never readable text.
_DROPPED_WITH_CONTENT = {"script", "style", "template"}
# nh3 applies url_schemes to every URL attribute alike, so "data" is let in
# here and narrowed to inline PNG/JPEG figures by _keep_attribute below.
_URL_SCHEMES = {"http", "https", "mailto", "data"}
_LINK_SCHEMES = {"http", "https", "mailto"}
_INVISIBLE = re.compile(r"[\x00-\x20\x7f-\x9f]")
_SCHEME = re.compile(r"([^/?#:]*):")
_INLINE_FIGURE = re.compile(r"data:image/(png|jpeg)[;,]")


def _keep_attribute(tag: str, name: str, value: str) -> str | None:
    """Classes narrowed to the allowlist; a second look at link and image URLs, stricter than nh3's schemes.

    Browsers ignore control characters and whitespace inside a URL's scheme
    ("java\tscript:"), so the check removes them first; nh3 hands over the
    value with entities already decoded.
    """
    if name == "class":
        kept = [c for c in value.split() if c in _ALLOWED_CLASSES.get(tag, ())]
        return " ".join(kept) or None
    if name not in ("href", "src"):
        return value
    plain = _INVISIBLE.sub("", value).lower()
    if tag == "img":
        # A report loads nothing from the network, and an SVG data URL can carry
        # script: inline PNG and JPEG figures are the only images kept.
        return value if _INLINE_FIGURE.match(plain) else None
    scheme = _SCHEME.match(plain)
    if scheme is None:  # relative link or #fragment
        return value
    return value if scheme.group(1) in _LINK_SCHEMES else None


_SANITIZER_OPTIONS: dict[str, Any] = {
    "tags": _ALLOWED_TAGS,
    "clean_content_tags": _DROPPED_WITH_CONTENT,
    "attributes": _ALLOWED_ATTRIBUTES,
    "attribute_filter": _keep_attribute,
    "url_schemes": _URL_SCHEMES,
    "strip_comments": True,
    "link_rel": "noopener noreferrer",
}
# One reusable cleaner; nh3 before 0.3 has no Cleaner class, and there the
# same options are passed to nh3.clean on every call.
_clean_html = (
    nh3.Cleaner(**_SANITIZER_OPTIONS).clean
    if hasattr(nh3, "Cleaner")
    else functools.partial(nh3.clean, **_SANITIZER_OPTIONS)
)


def sanitize_html(fragment: str) -> str:
    """An output's HTML reduced to the allowlist: no script, handler, style, embed or external fetch."""
    return _clean_html(fragment)


@functools.cache
def _markdown_renderer() -> Any:
    # Imported late like before: most commands never render a report.
    import mistune

    # escape=True: HTML typed into markdown shows as text, it is never markup.
    return mistune.create_markdown(escape=True, plugins=["table", "strikethrough"])


def render_markdown(text: str) -> str:
    """Markdown as HTML before sanitizing (tests compare the visible text of both)."""
    return _markdown_renderer()(text)


def _markdown(text: str) -> str:
    return sanitize_html(render_markdown(text))


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def render_output(output: dict) -> str:
    """One cell output as HTML."""
    kind = output.get("output_type")
    if kind == "stream":
        css = "err" if output.get("name") == "stderr" else ""
        return f'<pre class="{css}">{_esc(_ANSI.sub("", _text(output.get("text"))))}</pre>'
    if kind == "error":
        trace = "\n".join(output.get("traceback") or []) or f"{output.get('ename')}: {output.get('evalue')}"
        return f'<pre class="err">{_esc(_ANSI.sub("", trace))}</pre>'
    data = output.get("data") or {}
    if "image/png" in data:
        return f'<div class="out"><img alt="figure" src="data:image/png;base64,{_text(data["image/png"]).strip()}"></div>'
    if "text/html" in data:
        return f'<div class="out">{sanitize_html(_text(data["text/html"]))}</div>'
    if "text/markdown" in data:
        return f'<div class="out">{_markdown(_text(data["text/markdown"]))}</div>'
    if "application/vnd.jupyter.widget-view+json" in data and "text/plain" not in data:
        return '<p class="muted">[interactive widget: not part of the evidence]</p>'
    if "text/plain" in data:
        return f"<pre>{_esc(_ANSI.sub('', _text(data['text/plain'])))}</pre>"
    return ""


PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"  # the cells papermill inserts around a failing cell


def render_cells(nb: dict, failed_cell: int | None) -> str:
    """Every cell: markdown rendered, code with its outputs; the failed cell marked with an anchor."""
    parts = []
    for index, cell in enumerate(nb.get("cells", [])):
        if PAPERMILL_ERROR_TAG in cell.get("metadata", {}).get("tags", []):
            continue  # papermill's red banner: the header's failure box says the same and links the cell
        css = "cell failed" if index == failed_cell else "cell"
        if cell.get("cell_type") == "markdown":
            parts.append(f'<section class="{css}" id="cell-{index}">{_markdown(_source(cell))}</section>')
            continue
        if cell.get("cell_type") != "code":
            continue
        tags = cell.get("metadata", {}).get("tags", [])
        label = (
            " (parameters)"
            if "parameters" in tags
            else " (injected parameters)"
            if "injected-parameters" in tags
            else ""
        )
        outputs = "".join(render_output(o) for o in cell.get("outputs", []) or [])
        parts.append(
            f'<section class="{css}" id="cell-{index}"><div class="muted">In [{_esc(cell.get("execution_count") or " ")}]{label}</div>'
            f'<pre class="src">{_esc(_source(cell))}</pre>{outputs}</section>'
        )
    return "\n".join(parts)


def _table(rows: list[dict], columns: list[str]) -> str:
    if not rows:
        return '<p class="muted">none</p>'
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for c in columns:
            css = f' class="sev-{_esc(row.get(c))}"' if c == "severity" else ""
            cells.append(f"<td{css}>{_esc(row.get(c))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _targets(targets: list[dict]) -> str:
    """One line per server the run looked at: what it is and who it was to the server."""
    lines = []
    for t in targets:
        where = f"{t.get('host', '?')}:{t.get('port', '?')}/{t.get('database', '?')}"
        who = f" as {t['role']}" if t.get("role") else ""
        version = f" ({t['server_version']})" if t.get("server_version") else ""
        lines.append(f"<b>{_esc(t.get('kind', 'target'))}</b> {_esc(where)}{_esc(who)}{_esc(version)}")
    return f"<p><b>Looked at:</b> {' · '.join(lines)}</p>" if lines else ""


def render(manifest: dict, nb: dict) -> str:
    """The whole HTML page for one run."""
    m = manifest
    outcome = m["outcome"]
    sev = m.get("highest_severity")
    level = LEVELS.get(sev) if sev else None
    failure = ""
    if m.get("failed_cell") is not None:
        failure = (
            f"<p><b>The run did not finish:</b> {_esc(m.get('error'))} — "
            f'<a href="#cell-{m["failed_cell"]}">go to the failing cell</a></p>'
        )
    elif m.get("error"):
        failure = f"<p><b>Error:</b> {_esc(m['error'])}</p>"
    params = [{"name": k, "value": v} for k, v in (m.get("parameters") or {}).items()]
    actions = [
        {
            "title": a.get("title"),
            "status": a.get("status"),
            "plan": "; ".join(a.get("plan") or []),
            "result": a.get("result"),
        }
        for a in m.get("actions") or []
    ]
    severity_line = (
        f"<p><b>Highest severity:</b> {_esc(describe(sev))}</p>"
        if level and sev != "info"
        else "<p><b>Highest severity:</b> none</p>"
    )
    header = f"""
<header class="run">
<h1>{_esc(m["runbook"])} <span class="badge {_esc(outcome)}">{_esc(outcome)}</span></h1>
<p><b>Environment:</b> {_esc(m["env"])} · <b>Incident:</b> {_esc(m.get("incident") or "-")} ·
<b>Run:</b> {_esc(m["run_id"])} · <b>By:</b> {_esc(m["user"])}@{_esc(m["host"])}</p>
<p><b>Started:</b> {_esc(m["started_at"])} · <b>Ended:</b> {_esc(m["ended_at"])} · <b>Duration:</b> {m["duration_s"]:.1f}s ·
<b>opsnb</b> {_esc(m["opsnb_version"])} · <b>notebooks at</b> {_esc(m.get("notebooks_commit") or "unknown")}</p>
{_targets(m.get("targets") or [])}{severity_line}{failure}
<h2>Conclusions</h2>{_table(m.get("findings") or [], ["status", "severity", "check", "title", "detail"])}
<h2>Actions</h2>{_table(actions, ["title", "status", "plan", "result"])}
<h2>Parameters</h2>{_table(params, ["name", "value"])}
</header>"""
    title = f"{m['runbook']} {outcome} {m['started_at']}"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
        f"<style>{CSS}</style></head><body><main>{header}\n{render_cells(nb, m.get('failed_cell'))}</main></body></html>\n"
    )
