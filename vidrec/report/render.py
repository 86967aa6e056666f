"""HTML building blocks: a self-contained page (inline CSS, figures as base64 PNG, no network)."""
from __future__ import annotations

import base64
from html import escape

import pandas as pd

CSS = """
:root { --fg: #1d232a; --muted: #5b6570; --line: #d8dde3; --bg-alt: #f5f7f9; --accent: #1f5f99; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
       color: var(--fg); margin: 0 auto; max-width: 1200px; padding: 0 24px 48px; }
header { border-bottom: 3px solid var(--accent); padding: 16px 0 8px; margin-bottom: 12px; }
h1 { margin: 0 0 4px; font-size: 26px; }
h2 { margin-top: 36px; border-bottom: 1px solid var(--line); padding-bottom: 4px; color: var(--accent); }
h3 { margin: 22px 0 6px; font-size: 16px; }
.meta, .muted, figcaption, .caption { color: var(--muted); font-size: 13px; }
nav ol { columns: 2; margin: 8px 0; padding-left: 22px; }
nav a, a { color: var(--accent); }
.banner { padding: 10px 14px; border-radius: 6px; margin: 10px 0; font-weight: 500; }
.banner.leak { background: #b00020; color: #fff; border: 2px solid #7a0016; }
.banner.demo { background: #fff4d6; border: 1px solid #e0b84f; }
.banner.rehearsal { background: #1a237e; color: #fff; border: 2px solid #0d1440; font-size: 1.1em; }
.banner.ok { background: #e8f5e9; border: 1px solid #8bc34a; }
.banner.na { background: #f1f1f1; border: 1px solid #9e9e9e; }
.scroll { overflow-x: auto; }
table.tbl { border-collapse: collapse; margin: 6px 0 10px; font-size: 13px; }
table.tbl th, table.tbl td { border: 1px solid var(--line); padding: 4px 8px; text-align: left;
                             vertical-align: top; }
table.tbl thead th { background: var(--bg-alt); position: sticky; top: 0; }
table.tbl tbody tr:nth-child(even) { background: #fafbfc; }
table.claims td:nth-child(2) { font-weight: 600; }
table.claims td:nth-child(5) { font-weight: 600; background: #eef5fb; }
figure { margin: 12px 0 18px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); }
pre { background: var(--bg-alt); border: 1px solid var(--line); padding: 10px; overflow-x: auto;
      font-size: 12px; line-height: 1.35; }
details summary { cursor: pointer; color: var(--accent); }
dl.kv { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; font-size: 14px; }
dl.kv dt { font-weight: 600; } dl.kv dd { margin: 0; }
.tag { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 8px; background: #e3ecf5;
       color: var(--accent); margin-left: 6px; vertical-align: middle; }
"""


def table(df: pd.DataFrame, css_class: str = "", empty: str = "None.") -> str:
    if df is None or df.empty:
        return f"<p class=\"muted\">{escape(empty)}</p>"
    body = df.to_html(index=False, escape=True, border=0, na_rep="n/a", classes=f"tbl {css_class}".strip())
    return f"<div class=\"scroll\">{body}</div>"


def figure(png: bytes, alt: str, caption: str, file_name: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{escape(alt)}\">"
            f"<figcaption>{escape(caption)} <span class=\"tag\">{escape(file_name)}</span></figcaption></figure>")


def para(text: str, css_class: str = "") -> str:
    cls = f" class=\"{css_class}\"" if css_class else ""
    return f"<p{cls}>{escape(text)}</p>"


def bullets(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in items) + "</ul>"


def kv(pairs: list[tuple[str, str]]) -> str:
    return "<dl class=\"kv\">" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in pairs) + "</dl>"


def banner(text: str, kind: str) -> str:
    return f"<div class=\"banner {kind}\" role=\"alert\" data-banner=\"{kind}\">{escape(text)}</div>"


def details(summary: str, inner_html: str) -> str:
    return f"<details><summary>{escape(summary)}</summary>{inner_html}</details>"


def pre(text: str) -> str:
    return f"<pre>{escape(text)}</pre>"


def section(sid: str, title: str, body: list[str]) -> str:
    return f"<section id=\"{sid}\"><h2>{escape(title)}</h2>\n" + "\n".join(body) + "\n</section>"


def page(title: str, subtitle: str, banners: list[str], sections: list[tuple[str, str, list[str]]]) -> str:
    toc = "".join(f"<li><a href=\"#{sid}\">{escape(t)}</a></li>" for sid, t, _ in sections)
    parts = [
        "<!DOCTYPE html>",
        "<html lang=\"en\"><head><meta charset=\"utf-8\">",
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
        # no favicon request, no network: everything is inline
        "<link rel=\"icon\" href=\"data:,\">",
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>",
        f"<header><h1>{escape(title)}</h1><div class=\"meta\">{escape(subtitle)}</div></header>",
        *banners,
        f"<nav><strong>Contents</strong><ol>{toc}</ol></nav>",
        *(section(sid, t, body) for sid, t, body in sections),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _records(records: dict) -> pd.DataFrame:
    """A table stored in an experiment's summary.json ({"columns", "rows"}) as a frame."""
    return pd.DataFrame(records["rows"], columns=records["columns"])


def experiment_section(summary: dict, png: bytes, figure_file: str) -> list[str]:
    """HTML of one experiment from its summary.json: text, table, figure, claims.

    Shared by the experiment's own page and the comparison report, which reads only summary files."""
    body = [para(t) for t in summary["text"]]
    body += [table(_records(summary["show"]), "experiment"),
             figure(png, summary["title"], summary["caption"], figure_file),
             "<h3>Published figures beside this run (claims, with the setting each was measured in)</h3>",
             table(_records(summary["claims_show"]), "claims"),
             details("Sources", bullets([f"{k}: {' '.join(v.split())}" for k, v in summary["sources"].items()])),
             details(f"Inputs read ({len(summary['inputs'])} files)", pre("\n".join(summary["inputs"])))]
    return body
