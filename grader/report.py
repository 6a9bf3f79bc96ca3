"""Where the class struggles: ``autograded/<LAB>-report.html`` after every batch, and the course-wide
``autograded/course-report.html`` (``python -m grader report``).

Both pages are built from the batch's CSV (``autograded/<LAB>-report.csv``, written by
grader.autograde), so every count on the page is one the instructor can check in the CSV. They are
single self-contained files: figures are inline SVG drawn by matplotlib, no script, no external
asset, readable offline and safe to mail around.
"""

from __future__ import annotations

import csv
import html
import io
import statistics
from collections import Counter
from pathlib import Path

UNGRADABLE = "zero (not gradable)"


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def cells_of(row: dict) -> dict[str, tuple[float, float]]:
    """``task1-check=6/6; task2-check=0/4`` → ``{name: (score, max)}``."""
    out = {}
    for part in filter(None, (p.strip() for p in (row.get("cells") or "").split(";"))):
        name, _, value = part.partition("=")
        got, _, top = value.partition("/")
        out[name] = (float(got), float(top))
    return out


def reasons_of(row: dict) -> list[str]:
    """One submission's reasons, each reduced to what is common to the class: the text before the
    learner-specific hint about their own first error."""
    return [r.split(" [first error in your own cell")[0].strip()
            for r in (row.get("reasons") or "").split(" | ") if r.strip()]


def summary(rows: list[dict]) -> dict:
    """The figures of one lab's batch (what the page shows, as data)."""
    scored = [float(r["score"]) for r in rows if r.get("score") not in (None, "")]
    top = max((float(r["max_score"]) for r in rows if r.get("max_score")), default=0.0)
    per_cell: dict[str, dict] = {}
    for row in rows:
        for name, (got, most) in cells_of(row).items():
            entry = per_cell.setdefault(name, {"passed": 0, "total": 0, "max": most})
            entry["total"] += 1
            entry["passed"] += int(got >= most)
    reasons = Counter(reason for row in rows for reason in set(reasons_of(row)))
    seconds = [float(r["seconds"]) for r in rows if r.get("seconds") not in (None, "")]
    return {
        "submissions": len(rows),
        "full_marks": sum(1 for s in scored if top and s >= top),
        "mean": round(statistics.mean(scored), 2) if scored else None,
        "median": statistics.median(scored) if scored else None,
        "max_score": top,
        "scores": Counter(scored),
        "cells": dict(sorted(per_cell.items())),
        "reasons": reasons.most_common(),
        "seconds": seconds,
        "ungradable": [r for r in rows if (r.get("status") or "").startswith(UNGRADABLE)],
    }


def svg(figure) -> str:
    """A matplotlib figure as inline SVG (no external asset), closed after."""
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _figures(data: dict) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid")
    figures = []
    fig, ax = plt.subplots(figsize=(6, 3))
    values = sorted(data["scores"])
    ax.bar([f"{v:g}" for v in values], [data["scores"][v] for v in values], color="#4c72b0")
    ax.set_xlabel(f"score (out of {data['max_score']:g})")
    ax.set_ylabel("submissions")
    ax.set_title("Score distribution")
    figures.append(("score-distribution", svg(fig)))
    if data["cells"]:
        fig, ax = plt.subplots(figsize=(6, 0.5 + 0.4 * len(data["cells"])))
        names = list(data["cells"])
        rates = [100 * c["passed"] / c["total"] for c in data["cells"].values()]
        ax.barh(names, rates, color="#55a868")
        ax.set_xlim(0, 100)
        ax.set_xlabel("% of submissions with full points")
        ax.invert_yaxis()
        ax.set_title("Pass rate per graded cell")
        figures.append(("pass-rate", svg(fig)))
    if data["seconds"]:
        fig, ax = plt.subplots(figsize=(6, 3))
        ax.hist(data["seconds"], bins=min(20, max(3, len(data["seconds"]))), color="#c44e52")
        ax.set_xlabel("seconds to grade")
        ax.set_ylabel("submissions")
        ax.set_title("Time per submission")
        figures.append(("time-per-submission", svg(fig)))
    return figures


STYLE = """body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}
th{background:#f3f3f3}td.n{text-align:right}figure{margin:1rem 0}figure svg{max-width:100%;height:auto}
.muted{color:#666}"""


def page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            # no icon file: the report is one self-contained file, and a browser asks for /favicon.ico
            f"<link rel=\"icon\" href=\"data:,\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><main>\n<h1>{html.escape(title)}</h1>\n{body}\n</main></body></html>\n")


def _table(headers: list[str], rows: list[list], cls: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(
        f'<td class="n">{html.escape(str(v))}</td>' if isinstance(v, (int, float)) else f"<td>{html.escape(str(v))}</td>"
        for v in row) + "</tr>\n" for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>'


def lab_page(lab: str, rows: list[dict]) -> str:
    data = summary(rows)
    mean = "-" if data["mean"] is None else f"{data['mean']:g}"
    parts = [f'<p class="overview">{data["submissions"]} submission(s); <span id="full-marks">{data["full_marks"]}</span> '
             f"with full marks; mean {mean} / {data['max_score']:g}; "
             f'<span id="ungradable-count">{len(data["ungradable"])}</span> not gradable.</p>']
    parts += [f'<figure id="{name}">{drawing}</figure>' for name, drawing in _figures(data)]
    parts.append("<h2>Score distribution</h2>")
    parts.append(_table(["score", "submissions"], [[f"{s:g}", n] for s, n in sorted(data["scores"].items())],
                        "scores"))
    parts.append("<h2>Pass rate per graded cell</h2>")
    parts.append(_table(["graded cell", "points", "full points", "submissions", "pass rate"],
                        [[name, f"{c['max']:g}", c["passed"], c["total"], f"{100 * c['passed'] / c['total']:.0f}%"]
                         for name, c in data["cells"].items()], "cells"))
    parts.append("<h2>Most common reasons for lost points</h2>")
    parts.append(_table(["reason", "submissions"], [[r, n] for r, n in data["reasons"][:30]], "reasons")
                 if data["reasons"] else "<p>No points were lost.</p>")
    parts.append("<h2>Not gradable</h2>")
    parts.append(_table(["student", "reasons"], [[r["student"], r.get("reasons", "")] for r in data["ungradable"]],
                        "ungradable") if data["ungradable"] else "<p>Every submission was graded.</p>")
    secs = data["seconds"]
    if secs:
        parts.append(f'<p class="muted">Time per submission: median {statistics.median(secs):.1f} s, '
                     f"slowest {max(secs):.1f} s, total {sum(secs):.0f} s of grading.</p>")
    return page(f"{lab}: where the class struggles", "\n".join(parts))


def lab_report(root: Path, lab: str) -> Path:
    """Write ``autograded/<LAB>-report.html`` from the lab's CSV; return its path."""
    folder = Path(root) / "autograded"
    target = folder / f"{lab}-report.html"
    target.write_text(lab_page(lab, read_rows(folder / f"{lab}-report.csv")), encoding="utf-8")
    return target


def course_report(root: Path) -> Path:
    """Write ``autograded/course-report.html``: every graded lab side by side, each linking its page."""
    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt

    folder = Path(root) / "autograded"
    labs = sorted(p.name[: -len("-report.csv")] for p in folder.glob("*-report.csv")) if folder.is_dir() else []
    rows, means, passes = [], [], []
    for lab in labs:
        data = summary(read_rows(folder / f"{lab}-report.csv"))
        weakest = min(data["cells"].items(), key=lambda kv: kv[1]["passed"] / kv[1]["total"], default=None)
        rows.append([lab, data["submissions"], data["full_marks"], "-" if data["mean"] is None else data["mean"],
                     f"{data['max_score']:g}", len(data["ungradable"]),
                     f"{weakest[0]} ({100 * weakest[1]['passed'] / weakest[1]['total']:.0f}%)" if weakest else "-",
                     data["reasons"][0][0] if data["reasons"] else "-"])
        means.append(100 * data["mean"] / data["max_score"] if data["mean"] is not None and data["max_score"] else 0)
        passes.append(100 * data["full_marks"] / data["submissions"] if data["submissions"] else 0)
    parts = [f"<p>{len(labs)} lab(s) graded. Each lab's own page: "
             + ", ".join(f'<a href="{html.escape(lab)}-report.html">{html.escape(lab)}</a>' for lab in labs) + "</p>"]
    if labs:
        fig, ax = plt.subplots(figsize=(7, 3))
        x = range(len(labs))
        ax.bar([i - 0.2 for i in x], means, width=0.4, label="mean score %", color="#4c72b0")
        ax.bar([i + 0.2 for i in x], passes, width=0.4, label="full marks %", color="#55a868")
        ax.set_xticks(list(x), labs, rotation=30, ha="right")
        ax.set_ylim(0, 100)
        ax.legend()
        ax.set_title("Across the course")
        parts.append(f'<figure id="course-overview">{svg(fig)}</figure>')
    parts.append(_table(["lab", "submissions", "full marks", "mean", "out of", "not gradable",
                         "weakest graded cell", "most common reason"], rows, "labs"))
    target = folder / "course-report.html"
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(page("Course: where the class struggles", "\n".join(parts)), encoding="utf-8")
    return target
