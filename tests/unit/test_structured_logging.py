"""Logging setup: JSON lines in every process, the Lambda runtime's handler reused, LOG_LEVEL checked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from chalicelib.config import ConfigurationError, load_log_settings
from chalicelib.structured_logging import configure_logging, log_context


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
