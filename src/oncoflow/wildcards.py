"""Wildcard constraints that match exactly a given set of values (subject IDs, model names) in time
that does not grow with the size of the set."""

from __future__ import annotations

import re
from collections.abc import Iterable

NOTHING = "(?!)"  # matches no value: the constraint of an empty set


def exact_alternation(values: Iterable[str]) -> str:
    """A regex matching exactly ``values``, written as a prefix tree: ``sub1|sub2|sub10`` becomes
    ``sub(?:1(?:0)?|2)``. Python's ``re`` tries the branches of a flat alternation one by one, so
    matching a path against one of 5,000 subject IDs costs 5,000 tries; against the tree it costs
    about the length of the ID. Snakemake matches every file of the DAG against these constraints."""
    tree: dict = {}
    for value in set(values):
        node = tree
        for char in value:
            node = node.setdefault(char, {})
        node[""] = {}  # a value ends here
    return _branches(tree) if tree else NOTHING


def _branches(node: dict) -> str:
    ends = "" in node
    children = [re.escape(char) + _branches(child) for char, child in sorted(node.items()) if char]
    if not children:
        return ""
    body = children[0] if len(children) == 1 else "(?:" + "|".join(children) + ")"
    if ends:  # a shorter value ends here: what follows is optional
        return f"{body}?" if len(children) > 1 else f"(?:{body})?"
    return body
