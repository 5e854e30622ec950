"""The container files say what the tests run: the same `eventms` commands, and only
settings that exist. (Building and running the image needs a Docker engine; the
Dockerfile and compose file are linted by `make check-container`.)"""

from __future__ import annotations

import json
import tomllib

from eventms.config import Settings
from eventms.config_doc import END, START, markdown_reference
from tests.support.deployment import cli_commands, compose, dockerfile_instruction
from tests.support.live_server import LiveServer
from tests.support.paths import ROOT

ORIGINAL_NAMES = {
    "DB_HOST", "DB_PORT", "DB_USERNAME", "DB_PASSWORD", "DB_NAME", "REDIS_HOST", "REDIS_PORT",
    "SMTP_HOST", "SMTP_PORT", "SMTP_MAIL_FROM", "TTL", "RATE_LIMITER_TIME_TO_LEAVE",
    "RATE_LIMITER_MAX_TRY", "APP_ENV", "APP_PORT",
}  # fmt: skip
EVENTMS_SERVICES = ("migrate", "api", "worker")


def test_image_runs_the_eventms_cli_serve_by_default():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["eventms"] == "eventms.cli:main"
    assert dockerfile_instruction("ENTRYPOINT") == ["eventms"]
    assert dockerfile_instruction("CMD") == list(LiveServer.COMMAND)


def test_image_runs_unprivileged_and_checks_health():
    text = (ROOT / "Dockerfile").read_text()
    runtime = text.split("AS runtime", 1)[1]
    user = next(line for line in runtime.splitlines() if line.startswith("USER "))
    assert user.split()[1].split(":")[0] not in ("0", "root")
    check = runtime.split("HEALTHCHECK", 1)[1].split("\n", 2)[:2]
    probe = json.loads(check[1].strip().removeprefix("CMD "))
    assert probe[0] == "python" and "/health" in probe[-1]  # the slim image has no curl
    assert "APP_HOST=0.0.0.0" in runtime


def test_compose_commands_are_the_cli_commands_the_tests_run():
    services = compose()["services"]
    assert services["api"]["command"] == list(LiveServer.COMMAND)
    assert services["migrate"]["command"] == ["migrate"]  # run by test_operations
    assert services["worker"]["command"] == ["worker"]
    assert {"serve", "migrate"} <= cli_commands()
    for service in EVENTMS_SERVICES:
        assert services[service]["image"] == services["api"]["image"]


def test_compose_starts_in_order_behind_health_checks():
    services = compose()["services"]
    for backing in ("postgres", "redis", "mailpit"):
        assert "healthcheck" in services[backing], backing
    for service in ("api", "worker"):
        needs = services[service]["depends_on"]
        assert needs["migrate"] == {"condition": "service_completed_successfully"}
        for backing in ("postgres", "redis", "mailpit"):
            assert needs[backing] == {"condition": "service_healthy"}
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert services["migrate"]["restart"] == "no"
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    volumes = set(compose()["volumes"])
    assert {"postgres-data", "redis-data", "mailpit-data"} <= volumes


def test_compose_sets_only_real_settings_with_the_original_names():
    fields = {name.upper() for name in Settings.model_fields}
    for service in EVENTMS_SERVICES:
        env = set(compose()["services"][service]["environment"])
        assert env <= fields, f"{service}: not settings: {env - fields}"
        assert env >= ORIGINAL_NAMES, f"{service}: missing {ORIGINAL_NAMES - env}"
    assert compose()["services"]["api"]["environment"]["APP_ENV"] == "production"


def test_readme_holds_the_generated_configuration_reference():
    readme = (ROOT / "README.md").read_text()
    assert START in readme and END in readme
    documented = readme.split(START, 1)[1].split(END, 1)[0].strip("\n") + "\n"
    assert documented == markdown_reference(), (
        "README's configuration reference is stale: run"
        " `.venv/bin/python -m eventms.config --update README.md`"
    )
    assert "(undocumented)" not in documented
    for name in Settings.model_fields:
        assert f"`{name.upper()}`" in documented
