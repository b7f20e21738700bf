"""Bench reports: write results.json, results.md (the published MER-UniBench table layout) and a self-contained
report.html with plotly plots, from the results `bench.results` computes."""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path
from typing import Any

from affectreason.bench.results import DEFAULT_PROTOCOL, compute_results
from affectreason.bench.store import write_json
from affectreason.bench.suites import Suite


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.2f}"


def render_markdown(suite: Suite, results: dict[str, Any]) -> str:
    """The MER-UniBench table layout: one column per dataset plus the mean; published rows for comparison."""
    m = results["manifest"]
    lines = _main_table(suite, results) + _per_dataset_markdown(results)
    lines += _proxy_markdown(results) + _judged_markdown(results)
    if results.get("attribution"):
        from affectreason.attribution_report import corpus_markdown

        lines += ["", corpus_markdown(results["attribution"])]
    lines += [
        "",
        f"Git commit `{m.get('git_commit')}`; packages: "
        + ", ".join(f"{k} {v}" for k, v in sorted(m.get("packages", {}).items())),
        "",
    ]
    return "\n".join(lines)


def _main_table(suite: Suite, results: dict[str, Any]) -> list[str]:
    """The run's settings, then one row per published model and this run's main metric per dataset."""
    m = results["manifest"]
    names = [d.name for d in suite.datasets]
    head = [suite.dataset(n).display for n in names] + ["Mean"]
    lines = [
        f"# {suite.title} results",
        "",
        f"- model: `{m.get('model')}`, adapter: `{m.get('adapter')}`, engine: `{m.get('engine')}`",
        f"- prompt: `{m.get('prompt_version')}`, decoding: `{json.dumps(m.get('decoding'), sort_keys=True)}`",
        f"- protocol: `{results['protocol']}` (main metric per dataset, x100"
        + ("; the mean is pooled over samples); " if results.get("mean_over") == "samples" else "); ")
        + (
            "all datasets run"
            if results["all_datasets"]
            else "a subset of datasets: the mean is over those run"
        )
        + ("" if results["complete"] else "; **incomplete**: some samples are not predicted yet"),
        "",
        "| Model | " + " | ".join(head) + " |",
        "|---|" + "---:|" * len(head),
    ]
    for model, row in suite.published.items():
        cells = ["–" if row.get(n) is None else f"{row[n]:.2f}" for n in [*names, "mean"]]
        lines.append(f"| {model} (published) | " + " | ".join(cells) + " |")
    ds = results["datasets"]
    ours = [(f"**this run ({results['protocol']})**", "main", results["mean"])]
    if results["protocol"] != DEFAULT_PROTOCOL:
        ours.append((f"this run ({DEFAULT_PROTOCOL})", "main_default", results["mean_default"]))
    for label, key, mean in ours:
        cells = [_pct(ds[n][key]) if n in ds else "–" for n in names] + [_pct(mean)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    if any(d["main"] is None for d in ds.values()):
        lines += [
            "",
            "– in a run's row: the metric is undefined under this protocol (the reference's NaN, e.g. 0/0).",
        ]
    return lines


def _per_dataset_markdown(results: dict[str, Any]) -> list[str]:
    """Each dataset's task, metric, sample count, both protocols' scores, failures and cue faithfulness."""
    ds = results["datasets"]
    lines = [
        "",
        "## Per dataset",
        "",
        "| Dataset | Task | Metric | n | "
        + (f"{results['protocol']} | " if results["protocol"] != DEFAULT_PROTOCOL else "")
        + f"{DEFAULT_PROTOCOL} | Parse failures | Decode errors | Cue faithfulness (n) |",
        "|---|---|---|---:|"
        + ("---:|" if results["protocol"] != DEFAULT_PROTOCOL else "")
        + "---:|---:|---:|---:|",
    ]
    for d in ds.values():
        parity = f"{_pct(d['main'])} | " if results["protocol"] != DEFAULT_PROTOCOL else ""
        n = f"{d['n']}" if d["n"] >= d["selected"] else f"{d['n']} of {d['selected']}"
        lines.append(
            f"| {d['title']} | {d['task']} | `{d['metric']}` | {n} | {parity}{_pct(d['main_default'])} | "
            f"{100 * d['parse_fail_rate']:.1f}% | {d['errors']} | {_pct(d.get('faithfulness'))} ({d.get('faithfulness_n', 0)}) |"
        )
    return lines


def _proxy_markdown(results: dict[str, Any]) -> list[str]:
    """MME-Emotion's offline reasoning proxy: acoustic cue matching of the rationales against the audio clues."""
    rows = [
        (d["title"], d["scores"][DEFAULT_PROTOCOL])
        for d in results["datasets"].values()
        if "reasoning_proxy" in d["scores"][DEFAULT_PROTOCOL]
    ]
    if not rows:
        return []
    lines = [
        "",
        "## Reasoning proxy (offline: acoustic cues of the rationale matched to the audio clues)",
        "",
    ]
    lines += ["| Dataset | Soft F1 | Matched F1 | Samples with clues |", "|---|---:|---:|---:|"]
    for title, scores in rows:
        acoustic = scores["clue_match"]["acoustic"]
        lines.append(
            f"| {title} | {_pct(acoustic['soft']['f1'])} | {_pct(acoustic['matched']['f1'])} | {acoustic['n']} |"
        )
    return lines


def _judged_markdown(results: dict[str, Any]) -> list[str]:
    """The judge's scores per dataset (and pooled), x100 for MME-Emotion's 0-1 scores, as rated for laughter."""
    rows = [
        (d["title"], d["scores"][DEFAULT_PROTOCOL]["judge"])
        for d in results["datasets"].values()
        if "judge" in d["scores"][DEFAULT_PROTOCOL]
    ]
    if results.get("judge"):
        rows.append(("**overall (pooled)**", results["judge"]))
    if not rows:
        return []
    m = results["manifest"].get("judge") or {}
    lines = ["", f"## Judged scores (judge `{m.get('model')}` at `{m.get('endpoint')}`, temperature 0)", ""]
    lines += ["| Dataset | Recognition | Reasoning | CoT | Logical (0-5) | Multimodal (0-5) | n judged |"]
    lines += ["|---|---:|---:|---:|---:|---:|---:|"]
    for title, j in rows:
        cells = [_pct(j.get(k)) if k in j else "–" for k in ("recognition", "reasoning", "cot")]
        cells += [f"{j[k]:.2f}" if k in j else "–" for k in ("logical", "multimodal")]
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {j['n']} |")
    return lines


def _reference_families(spec_task: str, reference: dict[str, Any]) -> list[str]:
    from affectreason.taxonomy import families

    if spec_task == "discrete":
        return families([reference["label"]])
    if spec_task in ("ov", "emer") and reference.get("emotions"):
        return families(reference["emotions"])
    return []


def plot_data(suite: Suite, results: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """The numbers behind the report's plots (kept separate so they can be checked without a browser)."""
    from affectreason.taxonomy import families

    tasks = {d.name: d.task for d in suite.datasets}
    confusion: Counter[tuple[str, str]] = Counter()
    frequency: Counter[str] = Counter()
    for record in records:
        predicted = [e.strip().lower() for e in record.get("emotions") or [] if e.strip()]
        frequency.update(predicted)
        ref = _reference_families(tasks.get(record["dataset"], ""), record["reference"])
        if ref:
            pred = record.get("families") or families(predicted)
            confusion[(ref[0], next((f for f in pred if f), "none"))] += 1
    ds = results["datasets"]
    return {
        "datasets": [d["title"] for d in ds.values()],
        "scores": {
            f"this run ({results['protocol']})": [d["main"] for d in ds.values()],
            **(
                {f"this run ({DEFAULT_PROTOCOL})": [d["main_default"] for d in ds.values()]}
                if results["protocol"] != DEFAULT_PROTOCOL
                else {}
            ),
            **{
                f"{model} (published)": [row.get(name, None) and row[name] / 100 for name in ds]
                for model, row in suite.published.items()
                if any(name in row for name in ds)
            },
        },
        "parse_fail_rate": [d["parse_fail_rate"] for d in ds.values()],
        "confusion": {f"{r}|{p}": n for (r, p), n in sorted(confusion.items())},
        "frequency": frequency.most_common(25),
    }


def render_html(suite: Suite, results: dict[str, Any], records: list[dict[str, Any]]) -> str:
    """A self-contained page (plotly.js inlined, no network): scores, family confusion, frequency, parse failures."""
    import plotly.graph_objects as go
    from plotly.offline import get_plotlyjs

    data = plot_data(suite, results, records)
    figures = []
    scores = go.Figure(
        [
            go.Bar(name=name, x=data["datasets"], y=[None if v is None else 100 * v for v in values])
            for name, values in data["scores"].items()
        ]
    )
    scores.update_layout(title="Main metric per dataset (x100)", barmode="group", yaxis_range=[0, 100])
    figures.append(scores)
    if data["confusion"]:
        pairs = [k.split("|") for k in data["confusion"]]
        rows = sorted({r for r, _ in pairs})
        cols = sorted({p for _, p in pairs} | set(rows), key=lambda c: (c == "none", c))
        z = [[data["confusion"].get(f"{r}|{c}", 0) for c in cols] for r in rows]
        heat = go.Figure(go.Heatmap(z=z, x=cols, y=rows, colorscale="Blues", texttemplate="%{z}"))
        heat.update_layout(
            title="Emotion family: reference (rows) vs first predicted (columns)",
            xaxis_title="predicted",
            yaxis_title="reference",
        )
        figures.append(heat)
    labels = [w for w, _ in data["frequency"]] or ["(none)"]
    counts = [c for _, c in data["frequency"]] or [0]
    frequency = go.Figure(go.Bar(x=labels, y=counts))
    frequency.update_layout(title="Most frequent predicted emotions")
    figures.append(frequency)
    failures = go.Figure(go.Bar(x=data["datasets"], y=[100 * v for v in data["parse_fail_rate"]]))
    failures.update_layout(title="Parse-failure rate per dataset (%)", yaxis_range=[0, 100])
    figures.append(failures)
    divs = "\n".join(
        f.to_html(full_html=False, include_plotlyjs=False, div_id=f"plot{i}", config={"displaylogo": False})
        for i, f in enumerate(figures)
    )
    if results.get("attribution"):
        from affectreason.attribution_report import corpus_html

        divs += "\n" + corpus_html(results["attribution"])
    return _page(suite, results, divs, get_plotlyjs())


def _page(suite: Suite, results: dict[str, Any], divs: str, plotly_js: str) -> str:
    m = results["manifest"]
    info = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html.escape(json.dumps(m.get(k), sort_keys=True))}</td></tr>"
        for k in (
            "model",
            "adapter",
            "engine",
            "prompt_version",
            "decoding",
            "sampling",
            "shard",
            "limit",
            "git_commit",
        )
    )
    protocols = [results["protocol"]] + (
        [DEFAULT_PROTOCOL] if results["protocol"] != DEFAULT_PROTOCOL else []
    )
    keys = ["main", "main_default"][: len(protocols)]
    header = "".join(f"<th>{html.escape(p)}</th>" for p in protocols)
    rows = "".join(
        f"<tr><td>{html.escape(d['title'])}</td><td>{d['task']}</td><td>{html.escape(d['metric'])}</td>"
        f"<td>{d['n']}</td>"
        + "".join(f"<td>{_pct(d[k])}</td>" for k in keys)
        + f"<td>{100 * d['parse_fail_rate']:.1f}%</td><td>{_pct(d.get('faithfulness'))}</td></tr>"
        for d in results["datasets"].values()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(suite.title)} results</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style>
<script type="text/javascript">{plotly_js}</script></head><body>
<h1>{html.escape(suite.title)} results</h1>
<p>Protocol <b>{html.escape(results["protocol"])}</b>; mean {_pct(results["mean"])}
(default protocol {_pct(results["mean_default"])}).</p>
<table><tr><th>Dataset</th><th>Task</th><th>Metric</th><th>n</th>{header}<th>Parse failures</th><th>Cue faithfulness</th></tr>{rows}</table>
{divs}
<h2>Run</h2><table>{info}</table>
</body></html>
"""


def write_outputs(
    suite: Suite,
    records: list[dict[str, Any]],
    manifest: dict[str, Any],
    out: str | Path,
    protocol: str = DEFAULT_PROTOCOL,
    wheel_dir: str | None = None,
) -> dict[str, Any]:
    """Score the records and write results.json, results.md and report.html into `out`."""
    out = Path(out)
    results = compute_results(suite, records, manifest, protocol, wheel_dir)
    write_json(out / "results.json", results)
    (out / "results.md").write_text(render_markdown(suite, results), encoding="utf-8")
    (out / "report.html").write_text(render_html(suite, results, records), encoding="utf-8")
    return results


def summary_text(results: dict[str, Any], out: str | Path) -> str:
    """The terminal summary: main metric per dataset, the mean, and where the outputs are."""
    width = max([len(d["title"]) for d in results["datasets"].values()] + [4])
    lines = [f"{results['title']}  protocol {results['protocol']}"]
    for d in results["datasets"].values():
        n = f"n={d['n']}" if d["n"] >= d["selected"] else f"n={d['n']}/{d['selected']}"
        lines.append(f"  {d['title']:<{width}}  {_pct(d['main']):>6}  {d['metric']:<18} {n}")
    lines.append(f"  {'mean':<{width}}  {_pct(results['mean']):>6}")
    out = Path(out)
    lines.append(f"wrote {out / 'results.json'}, {out / 'results.md'}, {out / 'report.html'}")
    return "\n".join(lines)
