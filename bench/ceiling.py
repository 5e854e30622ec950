"""The ceiling: a bare ASGI app answering a small JSON, served exactly like `eventms serve`.

`--app fastapi` serves the same answer from a FastAPI route behind the same CORS
middleware as eventms instead: what the framework alone costs, before any database.

`python bench/ceiling.py --port P --workers N` runs it under uvicorn with the options
that `eventms.cli.serve` passes (no uvicorn access log: eventms writes its own from a
middleware, no proxy headers, uvicorn's default loop and HTTP parser), so that the
ratio endpoint / ceiling measures what the application costs, not a difference in
server set-up. Keep the two in step.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

BODY = b'{"statusCode":200,"message":"ok","result":{"hello":"world"}}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def fastapi_app() -> Any:
    from fastapi import FastAPI, Response
    from fastapi.middleware.cors import CORSMiddleware

    application = FastAPI()
    application.add_middleware(
        CORSMiddleware,
        allow_origins=["*"],
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )

    @application.get("/{path:path}")
    async def answer(path: str) -> Response:
        return Response(BODY, media_type="application/json")

    return application


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--app", choices=["bare", "fastapi"], default="bare")
    args = parser.parse_args()
    uvicorn.run(
        "ceiling:app" if args.app == "bare" else "ceiling:fastapi_app",
        factory=args.app == "fastapi",
        app_dir=str(Path(__file__).resolve().parent),
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        access_log=False,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
