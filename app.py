"""mib-prereqs: IAM prerequisites of AWS Marketplace Private Image Build, as a service.

Routes only parse, call the core (chalicelib.service) and render.
"""

from __future__ import annotations

# boto3 before everything else: `make bench` measures a cold start ~40 ms shorter with this order
# (urllib3, under boto3, imports that much slower after Chalice and Powertools; cause not found).
import boto3  # noqa: F401
from chalice import Chalice, IAMAuthorizer, Response

from chalicelib import custom_resource as cfn
from chalicelib import rest
from chalicelib.config import Settings
from chalicelib.service import REST_OWNER, Service
from chalicelib.spec import parse_rest_body

app = Chalice(app_name="mib-prereqs")
iam_auth = IAMAuthorizer()


def _service(caller: str = "mib-prereqs") -> Service:
    return Service(Settings.from_env(), caller)


def _rest_service() -> Service:
    arn = rest.caller_arn(app.current_request) or ""
    return _service("rest-" + (arn.rsplit("/", 1)[-1] or "anonymous"))


@app.route("/health", methods=["GET"])
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.route("/openapi.json", methods=["GET"], authorizer=iam_auth)
def openapi() -> Response:
    return Response(body=rest.openapi_document(), headers={"Content-Type": "application/json"})


@app.route("/prerequisites", methods=["GET"], authorizer=iam_auth)
def list_sets() -> Response:
    req = app.current_request
    account = rest.query_param(req, "account_id")
    return rest.handle(req, None, _rest_service, lambda svc: (svc.list_sets(account), 200))


@app.route("/prerequisites/{name}", methods=["PUT"], authorizer=iam_auth)
def put_set(name: str) -> Response:
    req = app.current_request

    def run(svc: Service) -> tuple[dict, int]:
        result = svc.converge(parse_rest_body(name, rest.json_body(req), REST_OWNER))
        return result.render(), 201 if result.created else 200

    return rest.handle(req, name, _rest_service, run, writes=True)


@app.route("/prerequisites/{name}/plan", methods=["POST"], authorizer=iam_auth)
def plan_set(name: str) -> Response:
    req = app.current_request

    def run(svc: Service) -> tuple[dict, int]:
        return svc.converge(parse_rest_body(name, rest.json_body(req), REST_OWNER), dry_run=True).render(), 200

    return rest.handle(req, name, _rest_service, run)


@app.route("/prerequisites/{name}", methods=["GET"], authorizer=iam_auth)
def get_set(name: str) -> Response:
    req = app.current_request
    account = rest.query_param(req, "account_id")
    return rest.handle(req, name, _rest_service, lambda svc: (svc.show(name, account).render(with_drift=True), 200))


@app.route("/prerequisites/{name}", methods=["DELETE"], authorizer=iam_auth)
def delete_set(name: str) -> Response:
    req = app.current_request
    account = rest.query_param(req, "account_id")
    return rest.handle(
        req, name, _rest_service, lambda svc: (svc.delete(name, REST_OWNER, account).render(), 200), writes=True
    )


@app.lambda_function(name="custom_resource")
def custom_resource(event: dict, context: object) -> None:
    """Custom::MarketplaceImageBuildPrerequisites: answers CloudFormation at its ResponseURL."""
    cfn.handle(event, context, _service)
