"""``python -m grader release|autograde|report|export|selfcheck|mutants|course`` (the Makefile's
release, grade, selfcheck, mutants and course targets)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from grader.course import REPO, drop_credentials, labs


def _lab_id(text: str) -> tuple[str, str]:
    """``LAB=ID`` → (LAB, ID); anything else is a usage error, not a traceback."""
    lab, sep, ident = text.partition("=")
    if not (sep and lab and ident):
        raise argparse.ArgumentTypeError(f"expected LAB=ID, got {text!r}")
    return lab, ident


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__)
    parser.add_argument("--root", type=Path, default=REPO,
                        help="course directory (holds nbgrader_config.py and solutions/); default: the repo")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("release", help="generate labs/ from solutions/ (all labs or one)")
    p.add_argument("lab", nargs="?")

    p = sub.add_parser("autograde", help="grade submitted/<student>/LAB in parallel, then CSV + feedback")
    p.add_argument("lab", nargs="?", help="a lab id or number; default: every lab with submissions")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                   help="worker processes of the local Dask cluster (default: one per CPU)")
    p.add_argument("--scheduler", default=os.environ.get("DASK_SCHEDULER_ADDRESS"),
                   help="grade on an existing Dask cluster (e.g. tcp://10.0.0.5:8786; default: "
                        "$DASK_SCHEDULER_ADDRESS, else a local cluster of --jobs processes)")
    p.add_argument("--student", action="append", help="grade only these students (repeatable)")
    p.add_argument("--cell-timeout", type=int, help="seconds per cell (default: nbgrader_config.py)")
    p.add_argument("--time-limit", type=int, help="seconds per notebook (default: nbgrader_config.py)")
    p.add_argument("--no-feedback", action="store_true")
    p.add_argument("--unsandboxed", action="store_true",
                   help="grade without the sandbox (only for a class you trust; reports say so)")

    p = sub.add_parser("report", help="write autograded/course-report.html (and each graded lab's page)")

    p = sub.add_parser("export", help="grades for a learning platform: canvas (gradebook import CSV) or "
                       "csv (one row per student, one column per lab, total)")
    p.add_argument("--format", choices=["canvas", "csv"], default="csv")
    p.add_argument("--output", type=Path, help="file to write (default: grades-canvas.csv / grades-by-lab.csv)")
    p.add_argument("--canvas-id", action="append", default=[], metavar="LAB=ID", type=_lab_id,
                   help="Canvas assignment id of a lab (repeatable): its column becomes 'LAB (ID)'")
    p.add_argument("--section", default="", help="Canvas section written on every row")

    p = sub.add_parser("selfcheck", help="solution → full marks, released notebook → zero, per lab")
    p.add_argument("lab", nargs="?")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)

    p = sub.add_parser("mutants", help="grade each lab's mutant catalog (tests/mutants/labNN.yaml): "
                       "mistakes lose the listed points, alternatives keep full marks")
    p.add_argument("lab", nargs="?", help="a lab id or number; default: every lab with a catalog")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)

    p = sub.add_parser("course", help="run every solution notebook on the local AWS: status, score, time")
    p.add_argument("lab", nargs="?")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="labs run side by side")

    args = parser.parse_args(argv)
    drop_credentials()  # before any lab code runs, this process holds no AWS credentials
    root = args.root.resolve()
    if args.command == "release":
        from grader.release import release

        done = release(root, args.lab)
        names = ", ".join(done) or "none found in solutions/"
        print(f"released {len(done)} lab(s) into {root / 'labs'}: {names}")
        return 0
    if args.command == "autograde":
        from grader.autograde import autograde, submissions

        chosen = labs(root, args.lab) if args.lab else [lab for lab in labs(root) if submissions(root, lab)]
        if not chosen:
            print(f"nothing to grade: no submitted/<student>/<LAB> folders under {root}")
            return 0
        for lab in chosen:
            autograde(root, lab, jobs=args.jobs, students=args.student, cell_timeout=args.cell_timeout,
                      time_limit=args.time_limit, feedback=not args.no_feedback,
                      unsandboxed=args.unsandboxed, scheduler=args.scheduler)
        from grader.report import course_report

        print(f"course-wide report: {course_report(root)}")
        return 0
    if args.command == "report":
        from grader.report import course_report, lab_report

        folder = root / "autograded"
        for csv_path in sorted(folder.glob("*-report.csv")) if folder.is_dir() else []:
            lab_report(root, csv_path.name[: -len("-report.csv")])
        print(f"wrote {course_report(root)}")
        return 0
    if args.command == "export":
        from grader.export import export

        ids = dict(args.canvas_id)
        print(f"wrote {export(root, args.format, args.output, canvas_ids=ids, section=args.section)}")
        return 0
    if args.command == "selfcheck":
        from grader.selfcheck import selfcheck

        return 0 if selfcheck(root, args.lab, jobs=args.jobs) else 1
    if args.command == "mutants":
        from grader.mutants import mutants

        return 0 if mutants(root, args.lab, jobs=args.jobs) else 1
    if args.command == "course":
        from grader.run_course import run_course

        return 0 if run_course(root, args.lab, jobs=args.jobs) else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
