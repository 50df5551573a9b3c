"""The study plan resolves exactly what it resolved before the config split (a pure refactor):
targets, folds and every rule's params of the demo and of each shipped study config, on a
synthetic sheet (tests/plan_digest.py), against tests/data/plan_golden.json."""

from __future__ import annotations

import json
from pathlib import Path

from plan_digest import all_digests

from oncoflow.plan import StudyPlan

GOLDEN = Path(__file__).parent / "data" / "plan_golden.json"


def test_every_study_plan_resolves_as_before(tmp_path: Path) -> None:
    golden = json.loads(GOLDEN.read_text())
    digests = all_digests(StudyPlan, tmp_path)
    assert set(digests) == set(golden), "a study config was added or removed: rewrite the golden (plan_digest.py)"
    changed = [f"{name}: {key}" for name, items in golden.items() for key, value in items.items()
               if digests[name].get(key) != value]
    assert not changed, f"the plan resolves differently: {', '.join(changed)}"
