"""CloudWatch metrics (Powertools Metrics, embedded metric format), per front end.

Namespace ``MibPrereqs``; every metric has the dimensions ``service`` and ``front_end``
(``rest`` or ``custom_resource``); ``Failures`` also has ``kind``:

| metric | counts |
|---|---|
| Converges | PUT, Create and Update events that completed |
| ChangesApplied | IAM changes executed (PUT, DELETE, custom-resource events) |
| DriftFound | GETs that found the set out of sync, and converges that repaired an existing set |
| Conflicts | requests refused because someone else owns the resources (409 / FAILED) |
| Retries | IAM eventual-consistency retries |
| Failures | failed requests, by ``kind`` (InvalidSpec, Forbidden, Conflict, Throttled, OutOfTime, Internal, ...) |

``POWERTOOLS_METRICS_DISABLED=true`` turns them off (the local stage does).
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

from aws_lambda_powertools.metrics.functions import is_metrics_disabled

NAMESPACE = "MibPrereqs"
SERVICE = "mib-prereqs"


@cache
def _provider() -> Any:
    """Powertools Metrics, imported on first use: a cold start that emits nothing does not pay for it."""
    from aws_lambda_powertools import Metrics

    return Metrics(namespace=NAMESPACE, service=SERVICE)


# Powertools keeps one metric set per process; threads (chalice local, the rollout
# simulator) must not interleave their figures in it.
_lock = threading.Lock()


def emit(
    front_end: str,
    *,
    converged: bool = False,
    changes: int = 0,
    drift: bool = False,
    retries: int = 0,
    failure: str | None = None,
    conflict: bool = False,
) -> None:
    """Publish one request's figures as one EMF blob (plus one for a failure's kind)."""
    if is_metrics_disabled():
        return
    with _lock:
        _emit(front_end, converged, changes, drift, retries, failure, conflict)


def _emit(
    front_end: str, converged: bool, changes: int, drift: bool, retries: int, failure: str | None, conflict: bool
) -> None:
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    _metrics = _provider()
    _metrics.add_dimension(name="front_end", value=front_end)
    _metrics.add_metric(name="Converges", unit=MetricUnit.Count, value=int(converged))
    _metrics.add_metric(name="ChangesApplied", unit=MetricUnit.Count, value=changes)
    _metrics.add_metric(name="DriftFound", unit=MetricUnit.Count, value=int(drift))
    _metrics.add_metric(name="Conflicts", unit=MetricUnit.Count, value=int(conflict))
    _metrics.add_metric(name="Retries", unit=MetricUnit.Count, value=retries)
    _metrics.add_metric(name="Failures", unit=MetricUnit.Count, value=int(failure is not None))
    _metrics.flush_metrics()
    if failure is not None:
        with single_metric(
            name="Failures",
            unit=MetricUnit.Count,
            value=1,
            namespace=NAMESPACE,
            default_dimensions={"service": SERVICE, "front_end": front_end},
        ) as metric:
            metric.add_dimension(name="kind", value=failure)
