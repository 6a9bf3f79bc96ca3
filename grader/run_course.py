"""``python -m grader course``: the whole course in one command.

Runs every solution notebook present (``solutions/NN-slug``) top to bottom on the local AWS, each
in a fresh kernel with the grading environment (no credentials, network guard), in a scratch copy
of its lab folder, and scores it the way nbgrader does (a graded code cell earns its points unless
it raised or wrote to stderr). Prints a per-lab table of status, score and time, and the total.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import nbformat

from grader.course import grading_env, labs


def score(nb) -> tuple[float, float]:
    """(earned, possible) over the graded code cells of an executed notebook, as nbgrader scores."""
    from nbgrader.utils import determine_grade, is_grade

    earned = possible = 0.0
    for cell in nb.cells:
        if cell.cell_type == "code" and is_grade(cell):
            got, top = determine_grade(cell)
            earned += got or 0
            possible += top
    return earned, possible


def first_error(nb) -> str:
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                name = cell.get("id", f"cell {index}")
                return f"{name}: {output.get('ename')}: {(output.get('evalue') or '').splitlines()[:1]}"
    return ""


def run_lab(root: Path, lab: str, *, cell_timeout: int = 600, time_limit: int = 1800) -> dict:
    """Execute one solution notebook; return status, score, max, seconds and the first error."""
    from traitlets.config import Config

    from grader.preprocessors import GuardedExecute

    with tempfile.TemporaryDirectory(prefix=f"grader-course-{lab}-") as tmp:
        folder = Path(tmp) / lab
        shutil.copytree(Path(root) / "solutions" / lab, folder)
        nb = nbformat.read(folder / f"{lab}.ipynb", as_version=4)
        config = Config()
        config.GuardedExecute.timeout = cell_timeout
        config.GuardedExecute.submission_timeout = time_limit
        # ipykernel warns at every start that its loopback TCP is unencrypted: let jupyter_client
        # provision CurveZMQ keys (the python3 kernelspec declares support), so it is encrypted.
        config.KernelManager.transport_encryption = "auto"
        executor = GuardedExecute(config=config)
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(grading_env("course-" + lab, base=saved))
        started = time.monotonic()
        try:
            executor.preprocess(nb, {"metadata": {"path": str(folder)}})
            problem = ""
        except Exception as exc:  # noqa: BLE001 - one broken lab must not stop the course run
            problem = f"{type(exc).__name__}: {exc}"
        finally:
            os.environ.clear()
            os.environ.update(saved)
        seconds = time.monotonic() - started
    earned, possible = score(nb)
    problem = problem or first_error(nb)
    status = "ok" if not problem and earned == possible else "FAILED"
    return {"lab": lab, "status": status, "score": earned, "max_score": possible,
            "seconds": seconds, "error": problem}


def run_course(root: Path, lab: str | None = None, quiet: bool = False,
               jobs: int | None = None) -> list[dict] | bool:
    """Run the chosen labs, ``jobs`` at a time (default: one per core); print the table; truthy
    when every lab ran clean at full marks.

    Labs are independent (each kernel starts its own local AWS), so they run side by side, each in
    its own worker process (run_lab sets the process environment for its kernel)."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    from grader.selfcheck import Result

    chosen = labs(root, lab)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(chosen) or 1))
    started = time.monotonic()
    done: dict[str, dict] = {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(run_lab, root, name): name for name in chosen}
        for future in as_completed(futures):
            row = done[futures[future]] = future.result()
            if not quiet:
                print(f"  {row['lab']}: {row['status']} {row['score']:g}/{row['max_score']:g} "
                      f"in {row['seconds']:.1f} s", flush=True)
    rows = [done[name] for name in chosen]
    if not quiet:
        print(render(rows, wall=time.monotonic() - started, jobs=jobs))
    return Result([dict(r, ok=r["status"] == "ok") for r in rows])


def render(rows: list[dict], wall: float | None = None, jobs: int = 1) -> str:
    lines = [f"{'lab':<24} {'status':<7} {'score':>7} {'time':>8}  first error"]
    for r in rows:
        lines.append(f"{r['lab']:<24} {r['status']:<7} {r['score']:>3g}/{r['max_score']:<3g} "
                     f"{r['seconds']:>7.1f}s  {r['error'][:80]}")
    total = sum(r["score"] for r in rows), sum(r["max_score"] for r in rows)
    busy = sum(r["seconds"] for r in rows)
    ok = sum(r["status"] == "ok" for r in rows)
    lines.append(f"{'total':<24} {ok}/{len(rows)} ok {total[0]:>3g}/{total[1]:<3g} {busy:>7.1f}s")
    if wall is not None:
        lines.append(f"wall time {wall:.1f} s ({jobs} lab(s) at a time)")
    return "\n".join(lines)
