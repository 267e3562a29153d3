"""Logging setup: JSON lines in every process, the Lambda runtime's handler reused, LOG_LEVEL checked."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from collections.abc import Iterator

import pytest

from chalicelib.config.environment import ConfigurationError
from chalicelib.config.logs import load_log_settings
from chalicelib.observability.structured_logging import configure_logging, log_context


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger without handlers; its handlers and level put back after the test.

    Emptied in the test's body: pytest adds its (long-lived) capture handlers after fixtures run.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    root.handlers = handlers
    root.setLevel(level)


def test_in_lambda_the_runtime_handler_writes_our_json_lines_and_no_second_handler_is_added(
    root_logger: logging.Logger,
) -> None:
    # GIVEN a handler on the root logger, as the Lambda runtime installs one
    stream = io.StringIO()
    runtime_handler = logging.StreamHandler(stream)
    root_logger.handlers = [runtime_handler]

    # WHEN logging is configured for Lambda, and a line is logged inside a bound context
    configure_logging("INFO", in_lambda=True)
    with log_context(request_id="req-1", correlation_id=None):
        logging.getLogger("telehealth.test").info("hello", extra={"status": 200})

    # THEN the runtime's handler wrote one JSON line with the bound field and nothing unset
    assert root_logger.handlers == [runtime_handler]
    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert {k: line[k] for k in ("message", "level", "logger", "status", "request_id")} == {
        "message": "hello",
        "level": "INFO",
        "logger": "telehealth.test",
        "status": 200,
        "request_id": "req-1",
    }
    assert "correlation_id" not in line and "timestamp" in line


def test_elsewhere_one_stdout_handler_however_often_it_is_configured(
    root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    root_logger.handlers = []
    configure_logging("WARNING")
    configure_logging("WARNING")

    logging.getLogger("telehealth.test").info("below the level")
    logging.getLogger("telehealth.test").warning("shown")

    assert len(root_logger.handlers) == 1
    lines = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    assert [(line["message"], line["level"]) for line in lines] == [("shown", "WARNING")]


def test_log_settings_read_the_level_and_whether_this_is_lambda() -> None:
    assert load_log_settings({}).level == "INFO"
    assert load_log_settings({"LOG_LEVEL": " debug "}).level == "DEBUG"
    assert load_log_settings({"AWS_LAMBDA_FUNCTION_NAME": "telehealth-api-prod"}).in_lambda
    assert not load_log_settings({}).in_lambda
    with pytest.raises(ConfigurationError, match="LOG_LEVEL"):
        load_log_settings({"LOG_LEVEL": "LOUD"})


def test_log_format_is_json_unless_stdout_is_a_terminal_or_log_format_says() -> None:
    assert load_log_settings({}).format == "json"
    assert load_log_settings({}, stdout_is_terminal=True).format == "console"
    assert load_log_settings({"LOG_FORMAT": "json"}, stdout_is_terminal=True).format == "json"
    assert load_log_settings({"LOG_FORMAT": " Console "}).format == "console"
    with pytest.raises(ConfigurationError, match="LOG_FORMAT"):
        load_log_settings({"LOG_FORMAT": "xml"})


def test_console_lines_are_one_readable_line_per_record(
    root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN console logging, as on a terminal
    root_logger.handlers = []
    configure_logging("INFO", console=True)

    # WHEN the API logs an access line and another line, inside a request
    with log_context(request_id="req-1"):
        access = {"method": "GET", "route": "/patients/{patient_id}", "status": 200, "duration_ms": 1.2}
        logging.getLogger("telehealth.access").info("request", extra={**access, "principal": "dev"})
        logging.getLogger("telehealth.test").warning("not handed off", extra={"notification_id": "n-1"})

    # THEN each is one line: time, level, what happened, its fields, the request id last
    access_line, other_line = capsys.readouterr().out.splitlines()
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d INFO GET /patients/\{patient_id\} 200 1.2ms principal=dev req=req-1", access_line
    )
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d WARNING telehealth.test: not handed off notification_id=n-1 req=req-1", other_line
    )


def test_the_bare_handler_chalice_local_installs_is_replaced_not_doubled(
    root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN the root handler `chalice local` installs before loading the app (logging.basicConfig)
    root_logger.handlers = []
    logging.basicConfig(stream=sys.stdout, level=logging.INFO, format="%(message)s")

    # WHEN the app configures logging and logs a line
    configure_logging("INFO")
    logging.getLogger("telehealth.access").info("request", extra={"status": 200})

    # THEN the line is printed once, as JSON
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["status"] == 200
