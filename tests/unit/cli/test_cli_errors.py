"""`stripe-everflow` as people expect it: --version, every argument's help says its
default, and every error is one line naming the problem and the fix, with an exit
code of its own — never a traceback."""

from __future__ import annotations

import argparse
import errno
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)

from stripe_everflow_cli import errors
from stripe_everflow_cli.errors import EXIT_CODES, CliError, cli_error_of, read_json_file
from stripe_everflow_cli.main import build_parser, main, run_command
from tests.support import PROJECT_ROOT

EVENT = PROJECT_ROOT / "events" / "stripe" / "basil" / "invoice.paid.first.json"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse: --help, --version, usage errors
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_exit_codes_are_distinct_and_documented() -> None:
    codes = [code for code, _, _ in EXIT_CODES]
    assert len(codes) == len(set(codes))
    for name in ("MISSING_FILE", "NOT_JSON", "OUTSIDE_PROJECT", "PORT_BUSY", "SERVER_DOWN"):
        assert getattr(errors, name) in codes
    for name in ("NO_AWS_CREDENTIALS", "UNKNOWN_STACK", "USAGE", "PROBLEM"):
        assert getattr(errors, name) in codes


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--version")
    assert code == 0
    assert out.startswith("stripe-everflow ") and out.strip().split()[-1][0].isdigit()


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def test_every_argument_of_every_command_has_help_naming_its_default() -> None:
    parser = build_parser()
    for name, sub in _subparsers(parser).items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            where = f"{name} {action.dest}"
            assert action.help, f"{where} has no help"
            meaningful = action.default not in (None, False, argparse.SUPPRESS)
            if meaningful:
                assert "default" in sub.format_help(), where
        text = sub.format_help()
        for action in sub._actions:
            if action.default not in (None, False, argparse.SUPPRESS) and action.option_strings:
                assert f"default: {action.default}" in " ".join(text.split()), (
                    f"{name} {action.option_strings[0]}: its default is not shown"
                )


def test_the_main_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--help")
    assert code == 0
    for command in ("setup", "doctor", "status", "local", "report", "stripe-standin"):
        assert f"    {command}" in out


def test_a_usage_error_is_one_line_with_the_help_to_read(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = _run(capsys, "report", "conversionz")
    assert code == errors.USAGE
    line = _one_line(err)
    assert "conversionz" in line and "--help" in line


def test_a_missing_event_file_names_it(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "send", "no-such-event.json")
    assert code == errors.MISSING_FILE
    line = _one_line(err)
    assert "no-such-event.json does not exist" in line and "give the path" in line


def test_an_event_file_that_is_not_json_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "invoice.paid",', encoding="utf-8")
    code, _, err = _run(capsys, "sign", str(broken))
    assert code == errors.NOT_JSON
    assert "broken.json is not valid JSON" in _one_line(err)


def test_a_json_file_that_is_not_an_event_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    other = tmp_path / "list.json"
    other.write_text("[1, 2]", encoding="utf-8")
    code, _, err = _run(capsys, "sign", str(other))
    assert code == errors.USAGE
    assert "is not a Stripe event" in _one_line(err)


def test_a_directory_given_as_a_file_is_named(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = _run(capsys, "sign", str(tmp_path))
    assert code == errors.MISSING_FILE
    assert "is a directory" in _one_line(err)


def test_a_signed_event_still_prints(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "sign", str(EVENT))
    assert code == 0 and out.startswith("t=")


def test_local_outside_the_project_says_where_to_run_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(capsys, "local", "--port", "0")
    assert code == errors.OUTSIDE_PROJECT
    line = _one_line(err)
    assert "template.yaml not found" in line and "run from the project" in line


def test_local_with_a_missing_config_file_names_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(PROJECT_ROOT)
    code, _, err = _run(capsys, "local", "--port", "0", "--config", "missing.config.json")
    assert code == errors.MISSING_FILE
    assert "missing.config.json does not exist" in _one_line(err)


def test_local_with_a_config_that_is_not_json_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(PROJECT_ROOT)
    config = tmp_path / "local.config.json"
    config.write_text("secret = 1", encoding="utf-8")
    code, _, err = _run(capsys, "local", "--port", "0", "--config", str(config))
    assert code == errors.NOT_JSON
    assert "is not valid JSON" in _one_line(err)


def test_local_with_a_secret_variable_that_is_not_json_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(PROJECT_ROOT)
    monkeypatch.setenv("STRIPE_EVERFLOW_SECRET", "{not json")
    code, _, err = _run(capsys, "local", "--port", "0", "--config", str(_empty_config(tmp_path)))
    assert code == errors.NOT_JSON
    assert "STRIPE_EVERFLOW_SECRET is not valid JSON" in _one_line(err)


def _empty_config(tmp_path: Path) -> Path:
    config = tmp_path / "empty.json"
    config.write_text("{}", encoding="utf-8")
    return config


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


@pytest.mark.parametrize("flag", ["--port", "--aws-port"])
def test_local_on_a_busy_port_names_the_port_and_the_flag(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    busy_port: int,
    flag: str,
) -> None:
    monkeypatch.chdir(PROJECT_ROOT)
    argv = ["local", "--port", "0", "--config", str(_empty_config(tmp_path))]
    code, _, err = _run(capsys, *argv, flag, str(busy_port))
    assert code == errors.PORT_BUSY
    line = _one_line(err)
    assert f"port {busy_port} ({flag}) is already in use" in line and "pick another" in line


def test_everflow_standin_on_a_busy_port_names_it(
    capsys: pytest.CaptureFixture[str], busy_port: int
) -> None:
    code, _, err = _run(capsys, "everflow-standin", "--port", str(busy_port))
    assert code == errors.PORT_BUSY
    assert f"port {busy_port}" in _one_line(err)


def test_no_stack_and_no_local_stack_running_says_how_to_name_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("STRIPE_EVERFLOW_STATE_DIR", str(tmp_path))
    code, _, err = _run(capsys, "report", "conversions")
    assert code == errors.USAGE
    line = _one_line(err)
    assert "no local stack running" in line and "--stack NAME" in line


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.usefixtures("no_aws_credentials")
@pytest.mark.parametrize("command", ["status", "doctor", "report conversions"])
def test_a_deployed_stack_without_aws_credentials_says_how_to_give_them(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    code, _, err = _run(capsys, *command.split(), "--stack", "bridge", "--region", "us-east-1")
    assert code == errors.NO_AWS_CREDENTIALS
    line = _one_line(err)
    assert "no AWS credentials found" in line and "aws configure" in line


@pytest.mark.usefixtures("no_aws_credentials")
def test_a_deployed_stack_without_a_region_says_how_to_give_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    code, _, err = _run(capsys, "redrive", "postbacks", "--stack", "bridge")
    assert code == errors.NO_AWS_CREDENTIALS
    assert "no AWS region set" in _one_line(err)


@pytest.mark.parametrize("command", ["status", "doctor", "report conversions", "redrive postbacks"])
def test_an_unknown_stack_is_named_with_the_fix(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        code, _, err = _run(
            capsys, *command.split(), "--stack", "no-such-stack", "--region", "us-east-1"
        )
    assert code == errors.UNKNOWN_STACK
    line = _one_line(err)
    assert "no-such-stack does not exist" in line and "check --stack" in line


def test_an_unforeseen_error_is_one_line_pointing_at_the_debug_switch(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(args: argparse.Namespace) -> int:
        raise KeyError("boom\nsecond line")

    monkeypatch.delenv("STRIPE_EVERFLOW_DEBUG", raising=False)
    code = run_command(argparse.Namespace(command="demo", run=broken))
    err = capsys.readouterr().err
    assert code == errors.UNEXPECTED
    line = _one_line(err)
    assert "unexpected KeyError" in line and "STRIPE_EVERFLOW_DEBUG=1" in line


def test_ctrl_c_is_one_line_and_exit_130(capsys: pytest.CaptureFixture[str]) -> None:
    def interrupted(args: argparse.Namespace) -> int:
        raise KeyboardInterrupt

    code = run_command(argparse.Namespace(command="demo", run=interrupted))
    err = capsys.readouterr().err
    assert code == errors.INTERRUPTED
    assert _one_line(err) == "stripe-everflow: interrupted"


# ---------------------------------------------------------------- the mapping itself


def _client_error(code: str, message: str, operation: str = "DescribeStacks") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@pytest.mark.parametrize(
    ("error", "code", "named"),
    [
        (NoCredentialsError(), errors.NO_AWS_CREDENTIALS, "no AWS credentials"),
        (NoRegionError(), errors.NO_AWS_CREDENTIALS, "no AWS region"),
        (
            EndpointConnectionError(endpoint_url="http://127.0.0.1:4566/"),
            errors.SERVER_DOWN,
            "nothing answers at http://127.0.0.1:4566/",
        ),
        (
            _client_error("ValidationError", "Stack with id x does not exist"),
            errors.UNKNOWN_STACK,
            "Stack with id x does not exist",
        ),
        (
            _client_error("ExpiredToken", "The security token included in the request is expired"),
            errors.NO_AWS_CREDENTIALS,
            "ExpiredToken",
        ),
        (_client_error("AccessDenied", "no"), errors.AWS_REFUSED, "AccessDenied"),
        (_client_error("Throttling", "Rate\nexceeded"), errors.AWS_REFUSED, "Rate exceeded"),
        (OSError(errno.EADDRINUSE, "in use"), errors.PORT_BUSY, "already in use"),
        (FileNotFoundError(errno.ENOENT, "nope", "x.json"), errors.MISSING_FILE, "x.json"),
        (
            FileNotFoundError("template.yaml not found here or above"),
            errors.OUTSIDE_PROJECT,
            "run from the project",
        ),
    ],
)
def test_library_errors_become_one_line_with_their_code(
    error: BaseException, code: int, named: str
) -> None:
    foreseen = cli_error_of(error)
    assert foreseen is not None
    assert foreseen.code == code
    assert named in str(foreseen)
    assert "\n" not in str(foreseen) and " — " in str(foreseen)


def test_a_connection_refused_by_requests_names_the_url() -> None:
    import requests

    request = requests.Request("POST", "http://127.0.0.1:9/stripe/webhook?x=1").prepare()
    foreseen = cli_error_of(requests.ConnectionError("refused", request=request))
    assert foreseen is not None and foreseen.code == errors.SERVER_DOWN
    assert "http://127.0.0.1:9/stripe/webhook —" in str(foreseen)


def test_an_unforeseen_error_is_not_mapped() -> None:
    assert cli_error_of(KeyError("x")) is None


def test_read_json_file_returns_the_document(tmp_path: Path) -> None:
    path = tmp_path / "ok.json"
    path.write_text(json.dumps({"a": 1}), encoding="utf-8")
    assert read_json_file(path) == {"a": 1}
    with pytest.raises(CliError) as refused:
        read_json_file(tmp_path / "missing.json")
    assert refused.value.code == errors.MISSING_FILE
