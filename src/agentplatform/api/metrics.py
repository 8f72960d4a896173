"""``GET /metrics``: the Prometheus scrape, optionally behind a bearer token.

With ``AGENTPLATFORM_METRICS_TOKEN`` set, a scrape must send ``Authorization: Bearer <token>``
(Prometheus: ``authorization: {credentials: …}``); anything else is a 401. Without it the
endpoint is open, for a network where only the scraper can reach it.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response

from agentplatform.api.deps import ServicesDep
from agentplatform.api.errors import envelope
from agentplatform.observability.metrics import CONTENT_TYPE

router = APIRouter(include_in_schema=False)


def _authorized(request: Request, expected: str) -> bool:
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), expected.encode())


@router.get("/metrics")
async def metrics(request: Request, services: ServicesDep) -> Response:
    token = services.settings.metrics_token
    if token is not None and not _authorized(request, token.get_secret_value()):
        message = "This endpoint needs the metrics bearer token."
        challenge = {"WWW-Authenticate": 'Bearer realm="metrics"'}
        return envelope(401, "unauthorized", message, headers=challenge)
    return Response(services.metrics.render(), media_type=CONTENT_TYPE)
