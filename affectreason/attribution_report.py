"""Renderings of modality attribution: terminal lines, a per-clip HTML page, corpus Markdown and HTML fragments.

Charts are inline SVG drawn here (a few bars), so every page is self-contained and opens with no network.
"""

from __future__ import annotations

import re
from html import escape
from typing import Any

_VARIANT_OF = {"video": "video_only", "audio": "audio_only", "text": "text_only"}
_LABEL = {"video_only": "video only", "audio_only": "audio only", "text_only": "text only", "full": "full"}
_COLOURS = ("#4c78a8", "#f58518", "#54a24b", "#b279a2", "#9d9d9d")
# one colour per modality in every corpus chart (grey: the full run, or no dominant modality)
_MODALITY_COLOURS = ("#4c78a8", "#f58518", "#54a24b", "#9d9d9d")


def safe_name(value: str) -> str:
    """A file-name-safe form of a clip id."""
    return re.sub(r"[^\w.-]+", "_", value).strip("._") or "clip"


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _conflict_word(conflict: bool | None) -> str:
    return {True: "yes", False: "no", None: "n/a"}[conflict]


def _dominant_word(summary: dict[str, Any]) -> str:
    if summary.get("dominant"):
        return summary["dominant"]
    scores = summary.get("scores", {})
    best = max(scores.values(), default=0.0)
    leaders = [m for m, s in scores.items() if s == best]
    return f"none (tie: {', '.join(leaders)})" if best > 0 and len(leaders) > 1 else "none"


def attribution_lines(record: dict[str, Any]) -> list[str]:
    """The terminal block for an attributed record (empty when the record has no attribution)."""
    summary = record.get("attribution")
    if not summary:
        return []
    lines = [
        f"  attribution  dominant: {_dominant_word(summary)}   conflict (video vs audio): "
        f"{_conflict_word(summary.get('conflict'))}"
    ]
    variants = record.get("variants", {})
    for modality, name in _VARIANT_OF.items():
        if name in variants:
            agreement = summary["agreement"][modality]
            emotions = ", ".join(variants[name].get("emotions") or []) or "(no emotion)"
            lines.append(
                f"    {_LABEL[name]:<11} family F1 {_num(agreement['family_f1'])}  "
                f"valence {_num(agreement['valence_agree'])}   {emotions}"
            )
        elif name in summary.get("skipped", {}):
            lines.append(f"    {_LABEL[name]:<11} skipped: {summary['skipped'][name]}")
    for kind, cues in summary.get("decorative_cues", {}).items():
        why = summary.get("decorative_why", {}).get(kind, "")
        lines.append(f"    possibly decorative {kind} cues ({why}): {'; '.join(cues)}")
    return lines


def svg_bars(
    groups: list[str],
    series: dict[str, list[float | None]],
    *,
    title: str = "",
    ymax: float = 1.0,
    width: int = 560,
    height: int = 240,
    colours: tuple[str, ...] = _COLOURS,
) -> str:
    """A grouped bar chart as inline SVG: one group per entry of `groups`, one bar per series (None: no bar),
    series coloured in the order of `colours`."""
    left, bottom, top = 40, 40, 28
    plot_w, plot_h = width - left - 10, height - bottom - top
    group_w = plot_w / max(1, len(groups))
    bar_w = group_w * 0.8 / max(1, len(series))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}" font-family="sans-serif" font-size="11">',
        f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    for tick in (0.0, 0.5, 1.0):
        y = top + plot_h * (1 - tick / ymax)
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick * ymax:g}</text>')
    for g, group in enumerate(groups):
        x0 = left + g * group_w + group_w * 0.1
        for s, (name, values) in enumerate(series.items()):
            value = values[g]
            if value is None:
                continue
            h = plot_h * min(max(value, 0.0), ymax) / ymax
            x, y = x0 + s * bar_w, top + plot_h - h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                f'fill="{colours[s % len(colours)]}"><title>{escape(name)} {escape(group)}: {value:.3f}</title></rect>'
            )
        parts.append(
            f'<text x="{left + (g + 0.5) * group_w:.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
            f"{escape(group)}</text>"
        )
    step = min(130, (width - left) // max(1, len(series)))
    for s, name in enumerate(series):
        x = left + s * step
        parts.append(
            f'<rect x="{x}" y="{height - 14}" width="10" height="10" fill="{colours[s % len(colours)]}"/>'
        )
        parts.append(f'<text x="{x + 14}" y="{height - 5}">{escape(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)


_STYLE = (
    "body{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
    "th{background:#f4f4f4}.muted{color:#777}"
)


def _cell(value: Any) -> str:
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value if v) or "-"
    elif isinstance(value, float):
        value = _num(value)
    elif value is None:
        value = "-"
    return f"<td>{escape(str(value))}</td>"


def render_attribution_page(record: dict[str, Any]) -> str:
    """A self-contained HTML page for one attributed clip: chart, answers of every run, grounding check."""
    summary = record["attribution"]
    variants = record.get("variants", {})
    modalities = [m for m in _VARIANT_OF if m in summary.get("agreement", {})]
    chart = svg_bars(
        modalities,
        {
            "family F1 vs full": [summary["agreement"][m]["family_f1"] for m in modalities],
            "valence agreement": [summary["agreement"][m]["valence_agree"] for m in modalities],
        },
        title="How close each single-modality answer is to the full answer",
    )
    rows = [("full", record, summary.get("modalities", []), None)]
    rows += [
        (name, variants[name], variants[name].get("modalities", []), m)
        for m, name in _VARIANT_OF.items()
        if name in variants
    ]
    table = [
        "<table><tr><th>run</th><th>inputs</th><th>emotions</th><th>families</th><th>valence</th>"
        "<th>family F1</th><th>valence agr.</th></tr>"
    ]
    for name, fields, inputs, modality in rows:
        agreement = summary["agreement"].get(modality, {}) if modality else {}
        table.append(
            f"<tr><td>{_LABEL[name]}</td>{_cell(inputs)}{_cell(fields.get('emotions'))}{_cell(fields.get('families'))}"
            f"{_cell(fields.get('valence'))}{_cell(agreement.get('family_f1'))}{_cell(agreement.get('valence_agree'))}</tr>"
        )
    table.append("</table>")
    notes = [
        f"<li>{escape(_LABEL[name])} skipped: {escape(why)}</li>"
        for name, why in summary.get("skipped", {}).items()
    ]
    for kind, cues in summary.get("decorative_cues", {}).items():
        why = summary.get("decorative_why", {}).get(kind, "")
        notes.append(
            f"<li>possibly decorative {escape(kind)} cues ({escape(why)}): {escape('; '.join(cues))}</li>"
        )
    title = escape(f"Modality attribution: {record.get('id', 'clip')}")
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{title}</title><style>{_STYLE}</style></head><body>'
        f'<h1>{title}</h1><p class="muted">{escape(str(record.get("source", "")))} · model '
        f"{escape(str(record.get('model')))}</p>"
        f"<p><b>Dominant modality:</b> {escape(_dominant_word(summary))} &nbsp; "
        f"<b>Conflict (video vs audio):</b> {_conflict_word(summary.get('conflict'))}</p>"
        f"{chart}{''.join(table)}<ul>{''.join(notes)}</ul></body></html>"
    )


def _accuracy_cell(accuracy: dict[str, Any], name: str) -> str:
    entry = accuracy.get(name)
    if not entry or entry.get("score") is None:
        return "-"
    text = f"{entry['score']:.3f}"
    if entry.get("relative") is not None:
        text += f" ({entry['relative']:.0%} of full)"
    return text


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _corpus_rows(view: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    head = [
        "dataset",
        "n",
        "video dominates",
        "audio dominates",
        "text dominates",
        "none",
        "conflict rate",
        "full",
        "video only",
        "audio only",
        "text only",
    ]
    rows = []
    for dataset, v in view.items():
        accuracy = v.get("accuracy", {})
        rows.append(
            [
                dataset,
                str(v["n"]),
                *(_pct(v["dominant"].get(m)) for m in ("video", "audio", "text", "none")),
                f"{_pct(v['conflict_rate'])} of {v['conflict_n']}" if v["conflict_n"] else "n/a",
                *(
                    _accuracy_cell(accuracy, name)
                    for name in ("full", "video_only", "audio_only", "text_only")
                ),
            ]
        )
    return head, rows


def corpus_markdown(view: dict[str, Any]) -> str:
    """A Markdown section for `results.md` from `corpus_attribution`'s result."""
    if not view:
        return ""
    head, rows = _corpus_rows(view)
    lines = [
        "## Modality attribution",
        "",
        "Share of clips each modality dominates (its ablation is closest to the full answer), how often the "
        "video-only and audio-only answers conflict, and each ablation's score against the reference "
        "(with its share of the full run's score on the same clips).",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]
    return "\n".join(lines)


def corpus_html(view: dict[str, Any]) -> str:
    """An HTML fragment (a `<section>`) for the benchmark report: the corpus table and two inline charts."""
    if not view:
        return ""
    head, rows = _corpus_rows(view)
    datasets = list(view)
    dominance = svg_bars(
        datasets,
        {m: [view[d]["dominant"].get(m) for d in datasets] for m in ("video", "audio", "text", "none")},
        title="Share of clips each modality dominates",
        colours=_MODALITY_COLOURS,
    )
    charts = [dominance]
    if any("accuracy" in v for v in view.values()):
        charts.append(
            svg_bars(
                datasets,
                {
                    _LABEL[name]: [
                        (view[d].get("accuracy", {}).get(name) or {}).get("score") for d in datasets
                    ]
                    for name in ("full", "video_only", "audio_only", "text_only")
                },
                title="Score against the reference: full run and each ablation",
                colours=(_MODALITY_COLOURS[3], *_MODALITY_COLOURS[:3]),
            )
        )
    table = "<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in head) + "</tr>"
    table += "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'<section id="attribution"><h2>Modality attribution</h2>{"".join(charts)}{table}</table></section>'
    )
