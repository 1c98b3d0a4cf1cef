"""The results as people read them: a console table, results.csv, results.json and a results page with a
bar chart of the fooling rates (95 % intervals as whiskers, chance at 50 %)."""

from __future__ import annotations

import csv
import html
import io
import json
from pathlib import Path

from colorization.turing.pages import page
from colorization.turing.results import Results

__all__ = ["bar_chart", "print_results", "results_csv", "results_page", "write_results"]

CSV_FIELDS = ("method", "trials", "fooled", "fooling_rate", "ci_low", "ci_high")


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def results_csv(results: Results) -> str:
    """One row per method: trials, fooled, fooling rate and its 95 % interval (shares in [0, 1])."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for m in results.methods:
        writer.writerow(
            [
                m.method,
                m.trials,
                m.fooled,
                *("" if v is None else f"{v:.6f}" for v in (m.rate, m.low, m.high)),
            ]
        )
    return out.getvalue()


def bar_chart(results: Results, width: int = 640, bar: int = 34) -> str:
    """An inline SVG: one horizontal bar per method (fooling rate), its interval as a whisker, 50 % dashed."""
    left, right, top = 150, 60, 28
    plot = width - left - right
    height = top + len(results.methods) * (bar + 14) + 30
    x = lambda v: left + plot * v  # noqa: E731 - a share in [0, 1] → pixels
    parts = [
        f"<svg id='chart' xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        "role='img' aria-label='fooling rate per method'>",
        f"<text x='{left}' y='16' font-size='13'>fooling rate (share of trials where the fake was taken "
        "for real), 95% interval</text>",
    ]
    for tick in (0, 0.25, 0.5, 0.75, 1.0):
        dash = " stroke-dasharray='5,4' stroke='#a00'" if tick == 0.5 else " stroke='#ccc'"
        parts.append(f"<line x1='{x(tick):.1f}' x2='{x(tick):.1f}' y1='{top}' y2='{height - 24}'{dash}/>")
        parts.append(
            f"<text x='{x(tick):.1f}' y='{height - 8}' font-size='11' text-anchor='middle'>{tick:.0%}</text>"
        )
    for k, m in enumerate(results.methods):
        y = top + 7 + k * (bar + 14)
        parts.append(
            f"<text x='{left - 8}' y='{y + bar / 2 + 4:.1f}' font-size='13' text-anchor='end'>"
            f"{html.escape(m.method)}</text>"
        )
        if m.rate is None:
            continue
        parts.append(
            f"<rect class='bar' x='{left}' y='{y}' width='{plot * m.rate:.1f}' height='{bar}' fill='#4e79a7'>"
            f"<title>{html.escape(m.method)}: {_pct(m.rate)}</title></rect>"
        )
        if m.low is not None and m.high is not None:
            mid = y + bar / 2
            parts.append(
                f"<path d='M{x(m.low):.1f},{mid - 8:.1f}v16M{x(m.low):.1f},{mid:.1f}H{x(m.high):.1f}"
                f"M{x(m.high):.1f},{mid - 8:.1f}v16' stroke='#111' stroke-width='1.6' fill='none'/>"
            )
        parts.append(
            f"<text x='{x(max(m.rate, m.high or 0)) + 6:.1f}' y='{y + bar / 2 + 4:.1f}' font-size='12'>"
            f"{_pct(m.rate)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def results_page(results: Results, title: str, token: str | None = None) -> str:
    """The whole results page: counts, chart, table per method, pairwise table, raters left out."""
    c = results.counts
    q = f"?token={html.escape(token)}" if token else ""
    rows = "".join(
        f"<tr data-method='{html.escape(m.method)}'><td>{html.escape(m.method)}</td>"
        f"<td class='trials'>{m.trials}</td><td class='fooled'>{m.fooled}</td>"
        f"<td class='rate'>{_pct(m.rate)}</td>"
        f"<td>{_pct(m.low)} – {_pct(m.high)}</td></tr>"
        for m in results.methods
    )
    names = [m.method for m in results.methods]
    pair_head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    pair_rows = "".join(
        f"<tr><td>{html.escape(a)}</td>"
        + "".join("<td>–</td>" if a == b else f"<td>{_pct(results.pairwise[a].get(b))}</td>" for b in names)
        + "</tr>"
        for a in names
    )
    failed = [r for r in results.raters if r.passed is False]
    failed_rows = "".join(
        f"<tr><td>{html.escape(r.rater[:8])}…</td><td>{r.vigilance_right} of {r.vigilance_seen}</td>"
        f"<td>{r.answered} of {r.total}</td></tr>"
        for r in failed
    )
    excluded = (
        "<p>None.</p>"
        if not failed
        else "<table id='excluded'><tr><th>rater</th><th>vigilance right</th><th>answered</th></tr>"
        f"{failed_rows}</table>"
    )
    body = f"""
<h1>{html.escape(title)}</h1>
<p id="counts">Raters: <b id="raters">{c["raters"]}</b> ({c["raters_finished"]} finished,
<b id="counted">{c["raters_counted"]}</b> counted, <b id="excluded-count">{c["raters_excluded"]}</b>
left out for failing vigilance, {c["raters_unchecked"]} not yet checked).
Scored trials counted: <b id="scored">{c["scored_trials"]}</b> over {c["images"]} photos;
vigilance trials answered: {c["vigilance_trials"]}; practice trials: {c["practice_trials"]}.</p>
{bar_chart(results)}
<h2>Fooling rate per method</h2>
<table id="methods"><tr><th>method</th><th>trials</th><th>fooled</th><th>fooling rate</th>
<th>95% interval</th></tr>{rows}</table>
<p>Interval: bootstrap over raters and photos, {results.resamples:,} resamples. 50% is chance: a fake that
cannot be told from the real photo.</p>
<h2>P(row fools more often than column)</h2>
<table id="pairwise"><tr><th></th>{pair_head}</tr>{pair_rows}</table>
<h2>Raters left out (vigilance)</h2>
{excluded}
<p><a href="results.csv{q}">results.csv</a> · <a href="results.json{q}">results.json</a></p>
"""
    return page(title, body)


def print_results(results: Results) -> None:
    """The per-method table on the console."""
    from rich.console import Console
    from rich.table import Table

    c = results.counts
    table = Table(title="Colorization Turing test: fooling rate per method")
    for name in ("method", "trials", "fooled", "fooling rate", "95% interval"):
        table.add_column(name, justify="left" if name == "method" else "right")
    for m in results.methods:
        table.add_row(m.method, str(m.trials), str(m.fooled), _pct(m.rate), f"{_pct(m.low)} – {_pct(m.high)}")
    console = Console()
    console.print(table)
    console.print(
        f"raters {c['raters']} ({c['raters_counted']} counted, {c['raters_excluded']} left out for failing "
        f"vigilance); scored trials {c['scored_trials']} over {c['images']} photos; "
        f"bootstrap over raters and photos, {results.resamples:,} resamples"
    )


def write_results(results: Results, folder: Path, title: str) -> dict[str, Path]:
    """results.csv, results.json and results.html into `folder`."""
    paths = {kind: folder / f"results.{kind}" for kind in ("csv", "json", "html")}
    paths["csv"].write_text(results_csv(results), encoding="utf-8")
    paths["json"].write_text(json.dumps(results.as_dict(), indent=2), encoding="utf-8")
    paths["html"].write_text(results_page(results, title), encoding="utf-8")
    return paths
