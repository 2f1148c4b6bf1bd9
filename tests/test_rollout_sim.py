"""`make rollout-sim` at a small N: every account converges, retries show, the table prints."""

from __future__ import annotations

import io

from bench import rollout_sim


def test_small_rollout_converges_every_account() -> None:
    out = io.StringIO()
    results = rollout_sim.simulate(accounts=4, concurrency=2, flaky_every=2, out=out)
    assert [r.phase for r in results] == ["Create", "Update", "Delete"]
    assert all((r.accounts, r.converged, r.failed) == (4, 4, 0) for r in results), [r.failures for r in results]
    assert results[0].retried == 2  # accounts 0 and 2 had a just-created provisioner role
    assert all(r.api_calls > 0 for r in results)
    assert "4/4" in out.getvalue()
    text = rollout_sim.table(results)
    assert text.splitlines()[0].split() == [
        "phase",
        "accounts",
        "converged",
        "failed",
        "retried",
        "wall",
        "time",
        "API",
        "calls",
    ]
    assert len(text.splitlines()) == 5


def test_arguments_are_bounded() -> None:
    import pytest

    with pytest.raises(SystemExit):
        rollout_sim.main(["--accounts", "0"])
    with pytest.raises(SystemExit):
        rollout_sim.main(["--concurrency", "1000"])
