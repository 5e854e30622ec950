# syntax=docker/dockerfile:1
# One image, two roles: `docker run IMAGE` serves the API (`eventms serve`),
# `docker run IMAGE worker` runs the mail workers (`eventms worker`).

# --- build: install eventms and its dependencies into a virtualenv ---
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/eventms
WORKDIR /src
# Dependencies first, in their own layer: a code change does not reinstall them.
COPY pyproject.toml README.md ./
RUN mkdir -p src/eventms \
    && touch src/eventms/__init__.py \
    && /opt/eventms/bin/pip install . \
    && /opt/eventms/bin/pip uninstall --yes eventms
COPY src ./src
RUN /opt/eventms/bin/pip install --no-deps .

# --- runtime: the virtualenv and nothing else, run as an unprivileged user ---
FROM python:3.11-slim AS runtime
RUN groupadd --system --gid 10001 eventms \
    && useradd --system --uid 10001 --gid eventms --no-create-home --shell /usr/sbin/nologin eventms \
    && mkdir -p /var/lib/eventms \
    && chown eventms:eventms /var/lib/eventms
COPY --from=build /opt/eventms /opt/eventms
ENV PATH=/opt/eventms/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    APP_ENV=production \
    APP_HOST=0.0.0.0 \
    APP_PORT=3000 \
    DATA_DIR=/var/lib/eventms
WORKDIR /var/lib/eventms
USER 10001:10001
EXPOSE 3000
# python, not curl: the slim image has no curl. Only the api answers HTTP; the
# compose file turns this check off for the worker and the migrate job.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('APP_PORT', '3000') + '/health', timeout=4)"]
ENTRYPOINT ["eventms"]
CMD ["serve"]
