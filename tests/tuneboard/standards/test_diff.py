from __future__ import annotations

from tests.tuneboard.standards.support import BASELINE, baseline
from tuneboard.standards import diff_documents


def test_identical_documents_have_an_empty_diff() -> None:
    assert diff_documents(baseline(), baseline()).empty


def test_rules_defaults_acceptance_and_description() -> None:
    a = baseline()
    rules = [dict(r) for r in BASELINE["rules"] if r["param"] != "hidden"]
    rules[1] = {**rules[1], "range": {"low": 1e-5, "high": 3e-3, "log": True}, "default": 1e-3}
    rules[0] = {**rules[0], "allowed": ["adam", "adamw"]}
    rules.append({"param": "dropout", "range": {"low": 0, "high": 0.5}})
    b = baseline(
        description="Tighter.",
        rules=rules,
        defaults={"early_stopping": {"monitor": "val_loss", "mode": "min", "patience": 8,
                                     "min_delta": 1e-4},
                  "sampler": {"type": "tpe"}},
        acceptance=[BASELINE["acceptance"][0], {"metric": "val_f1", "op": ">", "value": 0.9}],
    )
    d = diff_documents(a, b, from_version=1, to_version=2)
    assert d.description is not None and d.description.after == "Tighter."
    assert [r.param for r in d.rules.added] == ["dropout"]
    assert [r.param for r in d.rules.removed] == ["hidden"]
    changed = {c.param: c.changes for c in d.rules.changed}
    assert set(changed) == {"optimizer", "lr"}
    assert set(changed["lr"]) == {"range.high"}
    assert (changed["lr"]["range.high"].before, changed["lr"]["range.high"].after) == (1e-2, 3e-3)
    assert changed["optimizer"]["allowed"].after == ["adam", "adamw"]
    by_path = {c.path: (c.kind, c.before, c.after) for c in d.defaults}
    assert by_path == {
        "early_stopping.patience": ("changed", 5, 8),
        "pruner.type": ("removed", "hyperband", None),
        "budget.max_retries": ("removed", 2, None),
        "sampler.type": ("added", None, "tpe"),
    }
    assert len(d.acceptance.added) == 1 and len(d.acceptance.removed) == 2
    assert d.summary()["rules_changed"] == ["optimizer", "lr"]
