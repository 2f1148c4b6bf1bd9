"""REST glue: request parsing, error mapping to Chalice's shape, logging context."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from chalice import (
    BadRequestError,
    ChaliceViewError,
    ConflictError,
    ForbiddenError,
    NotFoundError,
    Response,
    UnprocessableEntityError,
)
from chalice.app import Request

from chalicelib import metrics
from chalicelib.errors import InvalidSpec, PrereqError
from chalicelib.log import logger
from chalicelib.service import Service

MAX_BODY_BYTES = 64 * 1024
OPENAPI_PATH = Path(__file__).with_name("openapi.json")

_CHALICE_ERRORS: dict[int, type[ChaliceViewError]] = {
    400: BadRequestError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
}
# Statuses that carry Retry-After; Chalice's error classes cannot set headers.
_RETRY_CODES = {429: "TooManyRequestsError", 503: "ServiceUnavailableError"}


@cache
def openapi_document() -> str:
    """The OpenAPI 3 description of the contract, read once per container."""
    return OPENAPI_PATH.read_text()


def json_body(request: Request) -> Any:
    raw = request.raw_body or b""
    if len(raw) > MAX_BODY_BYTES:
        raise InvalidSpec([f"body: at most {MAX_BODY_BYTES} bytes"])
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise InvalidSpec(["body: must be valid JSON"]) from None


def query_param(request: Request, key: str) -> str | None:
    return (request.query_params or {}).get(key)


def request_id(request: Request) -> str:
    return (request.context or {}).get("requestId") or str(uuid.uuid4())


def caller_arn(request: Request) -> str | None:
    return ((request.context or {}).get("identity") or {}).get("userArn")


def handle(
    request: Request,
    name: str | None,
    make_service: Callable[[], Service],
    action: Callable[[Service], tuple[dict[str, Any], int]],
    writes: bool = False,
) -> Response:
    """Run one core operation and render its result or error in the REST contract's shape."""
    rid = request_id(request)
    service: Service | None = None
    with logger.append_context_keys(request_id=rid, set=name, caller=caller_arn(request), route=request.path):
        try:
            service = make_service()  # inside: a broken deployment setting is a 500 with a request id too
            body, status = action(service)
        except PrereqError as err:
            logger.info(
                "request refused", extra={"status": err.status, "error": type(err).__name__, "reason": str(err)}
            )
            retries = service.retries if service else 0
            metrics.emit("rest", failure=type(err).__name__, conflict=err.status == 409, retries=retries)
            if err.status in _RETRY_CODES:
                return Response(
                    body={"Code": _RETRY_CODES[err.status], "Message": str(err)},
                    status_code=err.status,
                    headers={"Retry-After": str(getattr(err, "retry_after", 5))},
                )
            raise _CHALICE_ERRORS.get(err.status, ChaliceViewError)(str(err)) from err
        except Exception:
            logger.exception("unexpected error")
            metrics.emit("rest", failure="Internal", retries=service.retries if service else 0)
            return Response(
                body={"Code": "InternalServerError", "Message": f"an internal error occurred; request id {rid}"},
                status_code=500,
            )
        changes = len(body.get("changes", []))
        logger.info("request done", extra={"status": status, "account": body.get("account_id"), "changes": changes})
        metrics.emit(
            "rest",
            converged=writes and request.method == "PUT",
            changes=changes if writes else 0,
            drift=body.get("in_sync") is False
            or (writes and request.method == "PUT" and status == 200 and changes > 0),
            retries=service.retries,
        )
        return Response(body=body, status_code=status)
