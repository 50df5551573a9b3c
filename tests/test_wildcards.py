"""Wildcard constraints as prefix trees (oncoflow.wildcards): exactly the given values, in a path
as Snakemake embeds them."""

from __future__ import annotations

import re

import pytest

from oncoflow.wildcards import exact_alternation

VALUES = ["a", "ab", "abc", "b", "a-b", "x.y", "a_c", "sub1", "sub10", "sub2", "flair+t1ce_resnet18"]


def test_matches_exactly_the_values_and_nothing_else() -> None:
    regex = re.compile(exact_alternation(VALUES))
    assert all(regex.fullmatch(v) for v in VALUES)
    near = ["", "abcd", "c", "a-", "x", "xzy", "aa", "ab_", "sub", "sub3", "sub100", "flair+t1ce", "flairt1ce_resnet18"]
    assert not any(regex.fullmatch(v) for v in near)


def test_in_a_path_a_shorter_value_does_not_capture_a_longer_ones_prefix() -> None:
    regex = re.compile(rf"results/subjects/(?P<subject>{exact_alternation(VALUES)})/n4/t1\.nii\.gz")
    for value in VALUES:
        assert regex.fullmatch(f"results/subjects/{value}/n4/t1.nii.gz")["subject"] == value
    assert not regex.fullmatch("results/subjects/sub3/n4/t1.nii.gz")


@pytest.mark.parametrize("values", [[], ["only"]])
def test_empty_set_matches_nothing_and_one_value_itself(values: list[str]) -> None:
    regex = re.compile(exact_alternation(values))
    assert [bool(regex.fullmatch(v)) for v in ("", "only", "on")] == [False, bool(values), False]


def test_same_values_in_any_order_give_the_same_regex() -> None:
    ids = [f"TCGA-{i:02d}-{j:04d}" for i in range(12) for j in range(0, 300, 7)]
    regex = exact_alternation(ids)
    assert regex == exact_alternation(reversed(ids))
    assert len(regex) < len("|".join(ids))  # shared prefixes written once
    compiled = re.compile(regex)
    assert all(compiled.fullmatch(i) for i in ids) and not compiled.fullmatch("TCGA-12-0000")
