"""StackAccess.function_environment on the local stack: the settings the running
stack started with, not whatever config file is in the current directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stripe_everflow_cli.localconfig import DEFAULT_LOCAL_PARAMETERS
from stripe_everflow_cli.stack_access import StackAccess
from stripe_everflow_cli.targets import StackTarget

PROJECT = Path(__file__).parents[3]


def local_access(parameters: dict[str, str], noted: bool) -> StackAccess:
    target = StackTarget(
        session=None,
        endpoint="http://127.0.0.1:4566",
        parameters={**DEFAULT_LOCAL_PARAMETERS, **parameters},
        local_urls={"url": "http://127.0.0.1:3000"} if noted else {},
    )
    return StackAccess(target, None)


def test_the_running_stacks_parameters_win_over_the_directorys_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a local stack started with --config naming everflow as a click source,
    # and a command run from a directory whose config file says otherwise
    (tmp_path / "template.yaml").write_text((PROJECT / "template.yaml").read_text())
    (tmp_path / "local.config.json").write_text(json.dumps({"parameters": {"ClickSources": "api"}}))
    monkeypatch.chdir(tmp_path)
    access = local_access({"ClickSources": "api,stripe,everflow"}, noted=True)
    # Then the functions' settings are the running stack's
    environment = access.function_environment("MatchPaymentFunction")
    assert environment["CLICK_SOURCES"] == "api,stripe,everflow"


def test_without_the_running_stacks_note_the_directorys_config_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "template.yaml").write_text((PROJECT / "template.yaml").read_text())
    (tmp_path / "local.config.json").write_text(json.dumps({"parameters": {"ClickSources": "api"}}))
    monkeypatch.chdir(tmp_path)
    access = local_access({}, noted=False)
    assert access.function_environment("MatchPaymentFunction")["CLICK_SOURCES"] == "api"
