"""Every lab's mutant catalog (tests/mutants/labNN.yaml) graded through the real pipeline: each
mistake loses exactly the listed points with a reason naming it, each alternative keeps full marks,
and every check_* of the lab catches at least one mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.course import REPO
from grader.mutants import catalog_labs, load_catalog, render_row, run_lab

LABS = catalog_labs(REPO)
# To fit CI's time the suite grades one mutant per check plus an alternative of every catalog
# (grader.mutants.one_per_check); `make mutants` grades them all.


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a lab's mutants are whole gradings: lab 11's eight take ~8 minutes on 2 cores
@pytest.mark.parametrize("lab", LABS)
def test_catalog_graded_as_expected(lab, tmp_path: Path):
    report = run_lab(REPO, lab, jobs=2, scratch=tmp_path / "course", quiet=True, per_check=True)
    wrong = [render_row(row) for row in report["rows"] if not row["ok"]]
    assert not wrong, "\n".join(wrong)
    assert not report["uncovered"], f"checks that caught no mistake: {report['uncovered']}"
    kinds = [m["kind"] for m in load_catalog(REPO, lab)]
    assert kinds.count("mistake") >= 8 and kinds.count("alternative") >= 2
