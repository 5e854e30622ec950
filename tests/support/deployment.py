"""What the deployment files say: the compose file, the Dockerfile, the CLI's commands."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import typer
import yaml

from eventms.cli import cli
from tests.support.paths import ROOT


def cli_commands() -> set[str]:
    return set(typer.main.get_group(cli).commands)


@cache
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def dockerfile_instruction(name: str) -> list[str]:
    """The JSON (exec) form of the last `name` instruction of the runtime stage."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    found = [line for line in lines if line.startswith(name + " ")]
    assert found, f"no {name} in the Dockerfile"
    return json.loads(found[-1][len(name) + 1 :])
