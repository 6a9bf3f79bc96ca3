"""Hidden checks outside the kernel (grader.outside): the hidden block is split off, learner
variables cross as plain data only, and a name the notebook never defined is a clear NameError."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from grader.outside import LearnerNamespace, export_code, read_export, run_hidden, split_hidden

CELL = ('assert x > 0, "visible"\n### BEGIN HIDDEN TESTS\nfrom grader.checks import sample\n'
        'sample.check_hello(aws)\n### END HIDDEN TESTS\n')


def test_split_hidden_separates_the_blocks():
    visible, hidden = split_hidden(CELL)
    assert visible == 'assert x > 0, "visible"\n'
    assert hidden == "from grader.checks import sample\nsample.check_hello(aws)\n"
    assert split_hidden("print(1)\n") == ("print(1)\n", "")


def test_learner_values_cross_as_plain_data(tmp_path):
    user = {"qid": "abc", "frame": pd.DataFrame({"a": [1, 2], 3: ["x", "y"]}), "arr": np.arange(3),
            "series": pd.Series([1.5], name="v"), "count": np.int64(7), "when": pd.Timestamp("2013-01-01"),
            "client": object()}
    exec(export_code(list(user) + ["never"], str(tmp_path), "n1"), {"globals": lambda: user})
    values = read_export(str(tmp_path), "n1")
    assert values["qid"] == "abc" and values["arr"] == [0, 1, 2] and values["count"] == 7
    assert list(values["frame"].columns) == ["a", "3"] and values["frame"]["a"].tolist() == [1, 2]
    assert values["series"].tolist() == [1.5] and values["when"].startswith("2013-01-01")
    assert values["client"] is None  # a live object never crosses
    assert not list(tmp_path.iterdir())  # the exchange files are removed after reading


def test_hidden_block_gets_the_graders_aws_and_fetched_names():
    asked = []

    def fetch(names):
        asked.extend(names)
        return {"answer": 42}

    ns = LearnerNamespace(aws="grader-handle", fetch=fetch)
    assert run_hidden("assert aws == 'grader-handle'\nassert answer == 42\nassert len([1]) == 1\n",
                      "grader-handle", fetch) is None
    failure = run_hidden("assert missing_name == 1\n", "grader-handle", lambda names: {})
    assert isinstance(failure, NameError) and "not defined in your notebook" in str(failure)
    for use in ("missing_name.split('/')", "len(missing_name)", "f'{missing_name}'", "missing_name[0]",
                "missing_name + 1", "list(missing_name)", "float(missing_name)", "missing_name()"):
        failure = run_hidden(use + "\n", "h", lambda names: {})
        assert isinstance(failure, NameError) and "'missing_name' is not defined" in str(failure), use
    # a check that looks at the AWS state first reports that mistake, not the missing name
    failure = run_hidden("assert not isinstance(missing_name, list), 'the schedule runs daily'\n"
                         "missing_name.append(1)\n", "h", lambda names: {})
    assert isinstance(failure, NameError)
    failure = run_hidden("assert isinstance(missing_name, list), 'the schedule runs daily'\n", "h",
                         lambda names: {})
    assert isinstance(failure, AssertionError) and str(failure) == "the schedule runs daily"
    failure = run_hidden("assert answer == 41, 'wrong answer'\n", "h", fetch)
    assert isinstance(failure, AssertionError) and str(failure) == "wrong answer"
    assert "answer" in asked and "len" not in asked  # builtins are never fetched
    with pytest.raises(KeyError):
        ns["len"]
