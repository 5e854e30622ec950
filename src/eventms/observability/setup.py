"""Wire the observability parts into the app: middleware and `GET /metrics`."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Response

from eventms.api.deps import StateDep
from eventms.config import Settings
from eventms.health import oldest_due_mail_seconds
from eventms.observability import metrics
from eventms.observability.logging import lean_records
from eventms.observability.middleware import ObservabilityMiddleware
from eventms.outages import OutageLog

log = logging.getLogger("eventms.metrics")


def install(app: FastAPI, settings: Settings) -> None:
    # Added last, so outermost: it times and ids everything below it, CORS included.
    app.add_middleware(ObservabilityMiddleware)
    lean_records()  # in every process that serves the app

    outage = OutageLog(log, "database (metrics)")

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics(state: StateDep) -> Response:
        depth = oldest = None
        try:
            async with state["engine"].connect() as connection:
                depth = await metrics.job_queue_depth(connection)
                oldest = await oldest_due_mail_seconds(connection)
        except Exception as error:  # a scrape must still answer when the database is down
            outage.failed(error, "scrapes go without the job queue figures")
        else:
            outage.recovered()
        body = metrics.render(settings.prometheus_multiproc_dir, depth, oldest)
        return Response(body, media_type=metrics.CONTENT_TYPE)
