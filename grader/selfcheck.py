"""``python -m grader selfcheck [LAB]``: prove each lab's grading is sound before a class uses it.

In a scratch course directory (never the real gradebook), two students submit every lab: "solution"
hands in the instructor's source notebook, "blank" hands in the released notebook untouched. Both
go through the real autograde pipeline. The lab passes when solution scores full marks and blank
scores exactly zero.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from grader.autograde import autograde, fmt_score
from grader.course import config_file, labs
from grader.release import build


def selfcheck(root: Path, lab: str | None = None, *, jobs: int | None = None,
              cell_timeout: int | None = None, time_limit: int | None = None,
              scratch: Path | None = None, quiet: bool = False) -> list[dict] | bool:
    """Run the self-check; return the rows (truthy when every lab passed: see ``passed``)."""
    root = Path(root).resolve()
    chosen = labs(root, lab)
    rows = []
    with tempfile.TemporaryDirectory(prefix="grader-selfcheck-") as tmp:
        course = scratch_course(root, Path(scratch or tmp))
        for name in chosen:
            t0 = time.monotonic()
            stage_lab(root, course, name)
            shutil.copytree(course / "solutions" / name, course / "submitted" / "solution" / name,
                            dirs_exist_ok=True)
            shutil.copytree(course / "labs" / name, course / "submitted" / "blank" / name, dirs_exist_ok=True)
            results = {r["student"]: r for r in autograde(
                course, name, jobs=jobs, cell_timeout=cell_timeout, time_limit=time_limit,
                feedback=False, export=False, quiet=True)}
            good, blank = results["solution"], results["blank"]
            ok = (good.get("score") is not None and good["score"] == good.get("max_score")
                  and good["score"] > 0 and blank.get("score") == 0)
            rows.append({"lab": name, "solution": good, "blank": blank, "ok": ok,
                         "seconds": time.monotonic() - t0})
            if not quiet:
                print(f"  {name}: solution {fmt_score(good)}, blank {fmt_score(blank)} "
                      f"({rows[-1]['seconds']:.0f} s) {'PASS' if ok else 'FAIL'}", flush=True)
    if not quiet:
        print(render(rows))
    return Result(rows)


def scratch_course(root: Path, course: Path) -> Path:
    """A scratch course directory (its own gradebook) with the repo's nbgrader configuration."""
    course.mkdir(parents=True, exist_ok=True)
    shutil.copy(config_file(root), course / "nbgrader_config.py")
    return course


def stage_lab(root: Path, course: Path, name: str) -> None:
    """Copy the lab's source folder into the scratch course and build its released copy there."""
    shutil.copytree(root / "solutions" / name, course / "solutions" / name, dirs_exist_ok=True)
    if not (course / "labs" / name).exists():
        build(course, name, course / "labs" / name)


class Result(list):
    """The rows; truthy only when every lab passed."""

    def __bool__(self):
        return bool(len(self)) and all(row["ok"] for row in self)


def render(rows: list[dict]) -> str:
    lines = [f"{'lab':<24} {'solution':>9} {'blank':>7} {'time':>7}  verdict"]
    for row in rows:
        verdict = "PASS" if row["ok"] else "FAIL"
        lines.append(f"{row['lab']:<24} {fmt_score(row['solution']):>9} {fmt_score(row['blank']):>7} "
                     f"{row['seconds']:>6.1f}s  {verdict}")
        if not row["ok"]:
            for who in ("solution", "blank"):
                for reason in row[who].get("reasons", [])[:5]:
                    lines.append(f"    {who}: {reason}")
    passed = sum(row["ok"] for row in rows)
    lines.append(f"{passed}/{len(rows)} lab(s) pass (solution = full marks, blank = 0)")
    return "\n".join(lines)
