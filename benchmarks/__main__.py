"""Run the speed benchmarks (what ``make bench`` runs): each ``bench_*.py`` in its own process,
one after another, so one benchmark's caches and threads never colour the next one's figures.

    .venv/bin/python -m benchmarks                 # all of them
    .venv/bin/python -m benchmarks athena grading  # only those whose name contains a word

Every benchmark reports ratios measured within one run (see its docstring); a quiet machine gives
the figures worth quoting: the load average is printed before each one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(words: list[str]) -> int:
    scripts = sorted(HERE.glob("bench_*.py"))
    chosen = [s for s in scripts if not words or any(w in s.stem for w in words)]
    if not chosen:
        names = ", ".join(s.stem.removeprefix("bench_") for s in scripts)
        print(f"no benchmark matches {' '.join(words)!r}; there are: {names}", file=sys.stderr)
        return 2
    failed = []
    for script in chosen:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"\n=== {script.stem} (load average {load})", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        print(f"=== {script.stem}: {'ok' if code == 0 else f'exit {code}'} "
              f"in {time.perf_counter() - start:.0f} s", flush=True)
        if code:
            failed.append(script.stem)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
