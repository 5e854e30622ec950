"""Wire the observability parts into the app: middleware and `GET /metrics`."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Response

from eventms.api.deps import StateDep
from eventms.config import Settings
from eventms.observability import metrics
from eventms.observability.middleware import ObservabilityMiddleware

log = logging.getLogger("eventms.metrics")


def install(app: FastAPI, settings: Settings) -> None:
    # Added last, so outermost: it times and ids everything below it, CORS included.
    app.add_middleware(ObservabilityMiddleware)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(state: StateDep) -> Response:
        try:
            depth = await metrics.job_queue_depth(state["engine"])
        except Exception as error:  # a scrape must still answer when the database is down
            log.warning("job queue depth unavailable: %s", error)
            depth = None
        body = metrics.render(settings.prometheus_multiproc_dir, depth)
        return Response(body, media_type=metrics.CONTENT_TYPE)
