"""Grading speed: ``python -m grader autograde --jobs 2`` vs stock sequential ``nbgrader autograde``
on the same 20 submissions, and the grading overhead over plain nbclient execution of them.

The submissions are 20 correct hand-ins of the grader's fixture lab (tests/fixtures/course,
00-sample: labkit.connect(), two S3 tasks, hidden checks reading S3), each in its own kernel with its
own embedded local AWS, all under the grading environment (LABKIT_GRADING=1, no credentials).
Three timings, each in its own scratch course:
  stock    `nbgrader autograde 00-sample` (one process, sequential; nbgrader's default preprocessors)
  grader   `python -m grader autograde 00-sample --jobs 2 --no-feedback` (register + grade + CSV)
  nbclient the same 20 notebooks executed one after another with nbclient, nothing else
  open     `... autograde --jobs 1 --unsandboxed`: the sandbox's added cost per submission is
           (grader --jobs 1 - open) / submissions
Both grader runs go through Dask (a LocalCluster of --jobs processes), as `make grade` does; the
--jobs 1 run's report CSV gives the breakdown of a submission's time (grader.worker's timers).
Run: ``.venv/bin/python benchmarks/bench_grading.py [--submissions 20] [--jobs 2]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import grader_submissions as gs  # noqa: E402
from grader.course import grading_env  # noqa: E402

STOCK_CONFIG = """c = get_config()
c.CourseDirectory.root = "."
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "labs"
c.CourseDirectory.course_id = "bench"
c.Execute.timeout = 600
"""


def make_course(root: Path, count: int, stock: bool = False) -> Path:
    gs.course(root)
    for i in range(count):
        gs.submit(root, f"student{i:02d}", gs.good())
    if stock:
        (root / "nbgrader_config.py").write_text(STOCK_CONFIG)
    return root


def env() -> dict[str, str]:
    e = grading_env("bench")
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    return e


CPU: dict[str, float] = {}


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], cwd: Path, label: str = "") -> float:
    """Wall seconds of ``cmd``; its CPU seconds (itself, kernels and workers) go to CPU[label]."""
    cpu = children_cpu()
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True)
    seconds = time.perf_counter() - started
    CPU[label] = children_cpu() - cpu
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return seconds


def nbclient_run(root: Path) -> float:
    """Execute every submission with plain nbclient, sequentially, in the grading environment."""
    import nbformat
    from nbclient import NotebookClient

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env())
    try:
        cpu = children_cpu() + sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
        started = time.perf_counter()
        for path in sorted((root / "submitted").glob(f"*/{gs.LAB}/{gs.LAB}.ipynb")):
            nb = nbformat.read(path, as_version=4)
            NotebookClient(nb, timeout=600, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
        seconds = time.perf_counter() - started
        CPU["nbclient"] = children_cpu() + sum(resource.getrusage(resource.RUSAGE_SELF)[:2]) - cpu
        return seconds
    finally:
        os.environ.clear()
        os.environ.update(saved)


def scores(csv_path: Path) -> list[float]:
    import csv

    with open(csv_path) as handle:
        return sorted(float(row["score"]) for row in csv.DictReader(handle))


def breakdown(csv_path: Path) -> dict[str, float]:
    """Mean seconds per submission of each grading step (the report CSV's ``timings`` column, written
    by grader.worker): local AWS start, lab state, kernel start/stop, cells, hidden checks, nbgrader."""
    import csv

    sums: dict[str, float] = {}
    with open(csv_path) as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        for part in filter(None, (p.strip() for p in (row.get("timings") or "").split(";"))):
            name, _, value = part.partition("=")
            sums[name] = sums.get(name, 0.0) + float(value)
    return {name: round(total / len(rows), 3) for name, total in sums.items()} if rows else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--submissions", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    n = args.submissions
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        tmp = Path(tmp)
        stock = make_course(tmp / "stock", n, stock=True)
        nbgrader = [str(Path(sys.executable).parent / "nbgrader")]
        timed(nbgrader + ["generate_assignment", gs.LAB, "--force"], stock, "stock-generate")
        t_stock = timed(nbgrader + ["autograde", gs.LAB, "--force"], stock, "stock")
        timed(nbgrader + ["export"], stock, "stock-export")
        stock_scores = scores(stock / "grades.csv")

        ours = make_course(tmp / "grader", n)
        t_ours = timed([sys.executable, "-m", "grader", "--root", str(ours), "autograde", gs.LAB,
                        "--jobs", str(args.jobs), "--no-feedback"], REPO, "grader")
        our_scores = scores(ours / "grades.csv")

        ours1 = make_course(tmp / "grader1", n)
        t_ours1 = timed([sys.executable, "-m", "grader", "--root", str(ours1), "autograde", gs.LAB,
                         "--jobs", "1", "--no-feedback"], REPO, "grader1")
        steps = breakdown(ours1 / "autograded" / f"{gs.LAB}-report.csv")

        opened = make_course(tmp / "open", n)
        t_open = timed([sys.executable, "-m", "grader", "--root", str(opened), "autograde", gs.LAB,
                        "--jobs", "1", "--no-feedback", "--unsandboxed"], REPO, "unsandboxed1")

        plain = make_course(tmp / "plain", n)
        t_plain = nbclient_run(plain)

    result = {
        "submissions": n, "cpus": os.cpu_count(), "jobs": args.jobs,
        "stock_nbgrader_s": round(t_stock, 1), f"grader_jobs{args.jobs}_s": round(t_ours, 1),
        "grader_jobs1_s": round(t_ours1, 1), "unsandboxed_jobs1_s": round(t_open, 1),
        "sandbox_added_s_per_submission": round((t_ours1 - t_open) / n, 2), "nbclient_s": round(t_plain, 1),
        "speedup_vs_stock": round(t_stock / t_ours, 2),
        "grader_jobs1_over_nbclient": round(t_ours1 / t_plain, 2),
        "stock_over_nbclient": round(t_stock / t_plain, 2),
        "cpu_s": {k: round(v, 1) for k, v in CPU.items()},
        "cpu_grader_jobs1_over_nbclient": round(CPU["grader1"] / CPU["nbclient"], 2),
        "cpu_stock_over_nbclient": round(CPU["stock"] / CPU["nbclient"], 2),
        "seconds_per_submission_jobs1": steps,
        "load_average": os.getloadavg(),
        "all_full_marks": stock_scores == our_scores == [10.0] * n,
    }
    print(f"{n} submissions of {gs.LAB} on {os.cpu_count()} CPU(s)")
    print(f"  stock nbgrader autograde (sequential) {t_stock:7.1f} s")
    print(f"  grader autograde --jobs {args.jobs:<13}{t_ours:7.1f} s   speed-up x{t_stock / t_ours:.2f}")
    print(f"  grader autograde --jobs 1             {t_ours1:7.1f} s")
    print(f"  grader --jobs 1 --unsandboxed         {t_open:7.1f} s   sandbox adds "
          f"{(t_ours1 - t_open) / n:.2f} s per submission")
    print(f"  plain nbclient execution              {t_plain:7.1f} s")
    print(f"  grading overhead over nbclient: grader --jobs 1 x{t_ours1 / t_plain:.2f}, "
          f"stock nbgrader x{t_stock / t_plain:.2f}")
    print(f"  CPU seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in CPU.items())
          + f" (grader --jobs 1 / nbclient x{result['cpu_grader_jobs1_over_nbclient']:.2f})")
    print("  where a submission's time goes (grader --jobs 1, mean s): "
          + ", ".join(f"{k} {v:.2f}" for k, v in steps.items()))
    print(f"  load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print(json.dumps(result))
    if not result["all_full_marks"]:
        raise SystemExit(f"scores differ: stock {stock_scores} grader {our_scores}")


if __name__ == "__main__":
    main()
