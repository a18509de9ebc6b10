"""The drift report of one model version: a self-contained HTML page with inline SVG.

Nothing is fetched from outside the machine (no scripts, fonts or stylesheets), so the
page opens anywhere, including on an air-gapped analyst's laptop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any

WIDTH, HEIGHT, PAD = 420, 140, 28

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1d2433}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;margin:1rem 0}
td,th{padding:.3rem .6rem;border-bottom:1px solid #dde}
.open{color:#b42318;font-weight:600} .quiet{color:#067647}
.card{display:inline-block;vertical-align:top;margin:0 1.5rem 1.5rem 0}
svg{background:#fafbfc;border:1px solid #e4e7ec}
.ref{fill:#98a2b3} .cur{fill:#d92d20;fill-opacity:.55}
.line{fill:none;stroke:#1570ef;stroke-width:1.5}
.thr{stroke:#d92d20;stroke-dasharray:4 3} .axis{font-size:10px;fill:#667085}
"""


def render_report(model: str, version: int, state: Mapping[str, Any]) -> str:
    """The page for one version's state as the judge last committed it."""
    episodes: Mapping[str, Any] = state.get("episodes", {})
    history: Mapping[str, Any] = state.get("history", {})
    series: Mapping[str, list[list[float]]] = history.get("series", {})
    latest: Mapping[str, Any] = history.get("latest", {})
    subjects = sorted({name.rsplit(":", 1)[0] for name in series} | set(episodes))
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>drift: {escape(model)} v{version}</title><style>{STYLE}</style></head><body>",
        f"<h1>Drift of {escape(model)} version {version}</h1>",
        f"<p>Generated {datetime.now(UTC).isoformat(timespec='seconds')}.</p>",
        _episode_table(episodes),
    ]
    for subject in subjects:
        parts.append(f"<h2>{escape(subject)}</h2>")
        summary = latest.get(subject)
        if summary is not None:
            parts.append(_card("reference vs current", _distribution(summary)))
        for name in sorted(n for n in series if n.rsplit(":", 1)[0] == subject):
            method = name.rsplit(":", 1)[1]
            parts.append(_card(f"{method} over time", _timeline(series[name])))
    parts.append("</body></html>")
    return "".join(parts)


def _episode_table(episodes: Mapping[str, Any]) -> str:
    if not episodes:
        return "<p>No detector has evaluated this version yet.</p>"
    rows = ["<table><tr><th>kind:subject</th><th>state</th><th>episodes</th><th>since</th></tr>"]
    for name in sorted(episodes):
        episode = episodes[name]
        is_open = bool(episode.get("open"))
        state = f"{episode.get('severity')} (open)" if is_open else "quiet"
        rows.append(
            f"<tr><td>{escape(name)}</td><td class={'open' if is_open else 'quiet'}>"
            f"{escape(state)}</td><td>{int(episode.get('number', 0))}</td>"
            f"<td>{escape(str(episode.get('opened_at') or '')) if is_open else ''}</td></tr>"
        )
    rows.append("</table>")
    return "".join(rows)


def _card(title: str, svg: str) -> str:
    return f"<div class=card><div class=axis>{escape(title)}</div>{svg}</div>"


def _distribution(summary: Mapping[str, Any]) -> str:
    """Side-by-side bars of the reference's and the current window's shares."""
    reference, current = summary.get("reference", {}), summary.get("current", {})
    labels, ref_shares, cur_shares = _shares(reference, current)
    if not labels:
        return _empty()
    top = max(max(ref_shares, default=0.0), max(cur_shares, default=0.0), 1e-9)
    slot = (WIDTH - 2 * PAD) / len(labels)
    bars = []
    for index, (ref, cur) in enumerate(zip(ref_shares, cur_shares, strict=True)):
        x = PAD + index * slot
        for offset, share, css in ((0.1, ref, "ref"), (0.5, cur, "cur")):
            height = (HEIGHT - 2 * PAD) * share / top
            bars.append(
                f"<rect class={css} x={x + offset * slot:.1f} y={HEIGHT - PAD - height:.1f} "
                f"width={0.4 * slot:.1f} height={height:.1f}></rect>"
            )
    names = "".join(
        f"<text class=axis x={PAD + (i + 0.5) * slot:.1f} y={HEIGHT - 8} "
        f"text-anchor=middle>{escape(label[:8])}</text>"
        for i, label in enumerate(labels)
        if len(labels) <= 12 or i % max(1, len(labels) // 8) == 0
    )
    legend = f"<text class=axis x={PAD} y=14>grey: reference · red: current</text>"
    return _svg("".join(bars) + names + legend)


def _shares(
    reference: Mapping[str, Any], current: Mapping[str, Any]
) -> tuple[list[str], list[float], list[float]]:
    if isinstance(reference.get("frequencies"), Mapping):
        ref_freq, cur_freq = reference["frequencies"], current.get("frequencies", {})
        labels = sorted(set(ref_freq) | set(cur_freq))[:40]
        return (
            labels,
            [float(ref_freq.get(label, 0.0)) for label in labels],
            [float(cur_freq.get(label, 0.0)) for label in labels],
        )
    ref_bins, cur_bins = reference.get("bins"), current.get("bins")
    if (
        isinstance(ref_bins, Sequence)
        and isinstance(cur_bins, Sequence)
        and ref_bins
        and len(ref_bins) == len(cur_bins)
    ):
        labels = [str(index + 1) for index in range(len(ref_bins))]
        return labels, [float(v) for v in ref_bins], [float(v) for v in cur_bins]
    return [], [], []


def _timeline(points: Sequence[Sequence[float]]) -> str:
    if len(points) < 1:
        return _empty()
    times = [point[0] for point in points]
    values = [point[1] for point in points] + [point[2] for point in points]
    low, high = min(0.0, min(values)), max(values) or 1.0
    start, span = times[0], (times[-1] - times[0]) or 1.0

    def x(t: float) -> float:
        return PAD + (WIDTH - 2 * PAD) * (t - start) / span

    def y(v: float) -> float:
        return HEIGHT - PAD - (HEIGHT - 2 * PAD) * (v - low) / ((high - low) or 1.0)

    line = " ".join(f"{x(p[0]):.1f},{y(p[1]):.1f}" for p in points)
    threshold = points[-1][2]
    return _svg(
        f"<polyline class=line points='{line}'></polyline>"
        f"<line class=thr x1={PAD} x2={WIDTH - PAD} y1={y(threshold):.1f} y2={y(threshold):.1f}>"
        "</line>"
        f"<text class=axis x={PAD} y=14>threshold {threshold:.3g}; last {points[-1][1]:.3g}</text>"
    )


def _svg(body: str) -> str:
    return f"<svg width={WIDTH} height={HEIGHT} viewBox='0 0 {WIDTH} {HEIGHT}'>{body}</svg>"


def _empty() -> str:
    return _svg("<text class=axis x=20 y=70>no data yet</text>")
