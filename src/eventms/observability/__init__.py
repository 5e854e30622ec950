"""Logs, metrics and request ids: what an operator needs to see the service run.

`setup.install(app, settings)` adds the middleware and `GET /metrics`; the rest of
the app only calls `metrics.<thing>()` (see `metrics.py`). Nothing is imported here:
`eventms serve` must set PROMETHEUS_MULTIPROC_DIR before prometheus_client loads.
"""
