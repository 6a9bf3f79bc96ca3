"""A grading worker: ``python -m grader.worker ROOT LAB [overrides JSON]``.

Reads student ids on stdin, one per line, runs nbgrader autograde for each in this process (the
nbgrader start-up cost is paid once per worker, not once per submission) and answers one JSON line
per submission on its stdout. The parent (grader.autograde) enforces the per-submission wall-clock
limit and kills this worker, kernels included, if it overruns.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def grade_one(nb_api, root: Path, lab: str, student: str) -> dict:
    from grader import preprocessors
    from grader.autograde import reasons_from_notebooks, scores

    preprocessors.EVENTS.clear()
    preprocessors.NOTICES.clear()
    started = time.monotonic()
    try:
        result = nb_api.autograde(lab, student, force=True, create=True)
    except Exception as exc:  # noqa: BLE001 - one bad submission must not end the worker
        result = {"success": False, "error": f"{type(exc).__name__}: {exc}", "log": ""}
    seconds = time.monotonic() - started
    reasons = [f"{cell}: {message}" for cell, message in preprocessors.EVENTS]
    notices = [f"{cell}: {message}" for cell, message in preprocessors.NOTICES]
    reasons += reasons_from_notebooks(root, lab, student, result.get("log", ""))
    answer = {"student": student, "ok": bool(result.get("success")), "seconds": round(seconds, 2),
              "reasons": reasons, "notices": notices}
    if not answer["ok"]:
        tail = (result.get("error") or result.get("log") or "").strip().splitlines()[-3:]
        answer["reasons"].append("nbgrader autograde failed: " + " | ".join(tail))
    answer.update(scores(root, lab, student))
    return answer


def main(argv: list[str]) -> int:
    root, lab = Path(argv[0]).resolve(), argv[1]
    overrides = json.loads(argv[2]) if len(argv) > 2 else {}
    # Only answers go to the real stdout; anything else printed in this process goes to stderr.
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    from grader.course import api

    nb_api = api(root, **overrides)
    answers.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        student = line.strip()
        if student:
            answers.write(json.dumps(grade_one(nb_api, root, lab, student)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
