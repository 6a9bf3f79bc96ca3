"""``python -m grader release [LAB]``: labs/ (student versions) from solutions/ (sources).

nbgrader's own generate_assignment does the work (solutions and hidden tests stripped, cells
locked, checksums computed, the lab folder's other files copied) in a throw-away course with its
own gradebook, so releasing never touches the class gradebook. The result is then normalised
(outputs and execution counts cleared) and replaces ``labs/LAB``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import nbformat

from grader.course import api, labs

FORBIDDEN = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")


def normalise(path: Path) -> None:
    """No outputs, no execution counts, nbformat 4.5 with the source's cell ids."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.get("metadata", {}).pop("execution", None)
    nbformat.write(nb, path)


def build(root: Path, lab: str, dest: Path) -> Path:
    """Generate the student version of ``lab`` into ``dest`` (which must not exist)."""
    root = Path(root).resolve()
    with tempfile.TemporaryDirectory(prefix="grader-release-") as tmp:
        out = Path(tmp) / "release"
        nb_api = api(root, CourseDirectory__release_directory=str(out),
                     CourseDirectory__db_url=f"sqlite:///{tmp}/gradebook.db")
        result = nb_api.generate_assignment(lab, force=True, create=True)
        if not result["success"]:
            raise RuntimeError(f"nbgrader generate_assignment {lab} failed:\n{result.get('log', '')}\n"
                               f"{result.get('error', '')}")
        for notebook in (out / lab).glob("*.ipynb"):
            normalise(notebook)
        shutil.copytree(out / lab, dest)
    return dest


def release(root: Path, lab: str | None = None) -> list[str]:
    """Regenerate ``root/labs/LAB`` for one lab or all; return the lab ids released."""
    root = Path(root).resolve()
    done = []
    for name in labs(root, lab):
        target = root / "labs" / name
        with tempfile.TemporaryDirectory(prefix="grader-stage-") as stage:
            built = build(root, name, Path(stage) / name)
            problems = leaks(built)
            if problems:
                raise RuntimeError(f"release of {name} would leak: {problems}")
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(built, target)
        done.append(name)
    return done


def leaks(folder: Path) -> list[str]:
    """Solution markers or hidden-test text, or outputs, in the notebooks of a released folder."""
    problems = []
    for notebook in sorted(Path(folder).rglob("*.ipynb")):
        text = notebook.read_text(encoding="utf-8")
        problems += [f"{notebook.name}: contains {marker!r}" for marker in FORBIDDEN if marker in text]
        problems += [f"{notebook.name}: {p}" for p in outputs(notebook)]
    return problems


def outputs(notebook: Path) -> list[str]:
    """Cells of ``notebook`` that carry outputs or execution counts (committed notebooks must not)."""
    nb = nbformat.read(notebook, as_version=4)
    return [f"cell {cell.get('id', i)} has outputs" for i, cell in enumerate(nb.cells)
            if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count"))]


def stale(root: Path, lab: str) -> list[str]:
    """Differences between the committed ``labs/LAB`` and a fresh release of ``solutions/LAB``."""
    root = Path(root).resolve()
    committed = root / "labs" / lab
    if not committed.is_dir():
        return [f"labs/{lab} is missing: run `make release`"]
    with tempfile.TemporaryDirectory(prefix="grader-stale-") as tmp:
        fresh = build(root, lab, Path(tmp) / lab)
        names = {p.relative_to(fresh).as_posix() for p in fresh.rglob("*") if p.is_file()}
        have = {p.relative_to(committed).as_posix() for p in committed.rglob("*") if p.is_file()
                and "__pycache__" not in p.parts and ".ipynb_checkpoints" not in p.parts}
        diffs = [f"labs/{lab}/{n} is missing" for n in sorted(names - have)]
        diffs += [f"labs/{lab}/{n} is not produced by the release" for n in sorted(have - names)]
        diffs += [f"labs/{lab}/{n} differs from a fresh release" for n in sorted(names & have)
                  if (fresh / n).read_bytes() != (committed / n).read_bytes()]
    return diffs
