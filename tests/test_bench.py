"""`make bench` in quick mode: it runs, prints every figure, and the call counts hold exactly.

Times are printed, never asserted: the machine is shared.
"""

from __future__ import annotations

from bench import run as bench


def test_quick_bench_prints_every_figure_and_the_counts_hold() -> None:
    rows = bench.run(quick=True)
    by_figure = {r.figure: r for r in rows}
    assert by_figure["IAM writes, fresh set"].measured == "6"
    assert by_figure["IAM writes, converged set"].measured == "0"
    assert int(by_figure["IAM reads, converged set"].measured) <= 9
    assert by_figure["package zip (boto3 not vendored)"].met
    text = bench.table(rows)
    assert len(text.splitlines()) == len(rows) + 2
    print(text)


def test_critical_path_counts_round_trips_not_calls() -> None:
    calls = bench.Calls()
    # Three calls at once, then two at once, then one: three round trips for six calls.
    calls.spans = [(0, 1), (0, 1.1), (0.05, 1), (1.2, 2), (1.15, 2.1), (2.2, 3)]
    assert calls.critical_path() == 3
    calls.spans = [(0, 1), (1, 2), (2, 3)]  # one at a time
    assert calls.critical_path() == 3
    calls.spans = []
    assert calls.critical_path() == 0
