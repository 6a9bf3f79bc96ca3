"""Shared check helpers on the unexpected values a learner's notebook can hand them: a failure the
learner can act on (or the right answer), never a crash that costs a correct answer its points."""

from __future__ import annotations

import pandas as pd
import pytest
from botocore.exceptions import ClientError

from grader.checks import lab11
from grader.checks.common import number, require_prefix_gone
from grader.outside import NotInNotebook


def test_number_accepts_numbers_and_numeric_strings_only():
    assert [number(v) for v in (20, "20", '"0.1"', 1.5)] == [20.0, 20.0, 0.1, 1.5]
    assert [number(v) for v in (None, "20 USD", [1], {})] == [None, None, None, None]


def test_lab11_values_takes_lists_series_and_one_column_frames():
    assert lab11._values([0.1, 0.2]) == [0.1, 0.2]
    assert lab11._values(pd.Series([0.1, 0.2])) == [0.1, 0.2]  # `served or []` raised on this
    assert lab11._values(pd.DataFrame({"p": [0.1, 0.2]})) == [0.1, 0.2]
    assert lab11._values(None) == [] and lab11._values("abc") == ["abc"] and lab11._values(3) == [3]
    with pytest.raises(NameError, match="not defined in your notebook"):
        lab11._values(NotInNotebook("served"))


class _NoBucket:
    bucket = "gone"

    def client(self, name):
        return self

    def list_objects_v2(self, **kwargs):
        raise ClientError({"Error": {"Code": "NoSuchBucket"}}, "ListObjectsV2")


def test_prefix_gone_when_the_whole_bucket_is_gone():
    require_prefix_gone(_NoBucket(), "events/", "delete them")  # nothing remains: no crash, no failure
