"""Lines in CloudWatch Embedded Metric Format: whether they are well formed, and what they hold."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from tests.helpers.waiting import parse_json_lines

# The structure the EMF specification gives a line (docs.aws.amazon.com, "Specification: Embedded
# metric format"): what JSON Schema can say. ``emf_problems`` adds the cross-references it cannot.
EMF_UNITS = (
    *("Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes"),
    *("Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count"),
    *("Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second"),
    *("Bits/Second", "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second"),
    *("Count/Second", "None"),
)
EMF_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},  # milliseconds since the epoch
                "CloudWatchMetrics": {"type": "array", "items": {"$ref": "#/$defs/directive"}},
            },
        }
    },
    "$defs": {
        "directive": {
            "type": "object",
            "required": ["Namespace", "Dimensions", "Metrics"],
            "properties": {
                "Namespace": {"type": "string", "minLength": 1, "maxLength": 1024},
                "Dimensions": {
                    "type": "array",
                    "items": {
                        "type": "array",
                        "maxItems": 30,
                        "items": {"type": "string", "minLength": 1, "maxLength": 250},
                    },
                },
                "Metrics": {
                    "type": "array",
                    "maxItems": 100,
                    "items": {
                        "type": "object",
                        "required": ["Name"],
                        "properties": {
                            "Name": {"type": "string", "minLength": 1, "maxLength": 1024},
                            "Unit": {"enum": list(EMF_UNITS)},
                            "StorageResolution": {"enum": [1, 60]},
                        },
                    },
                },
            },
        }
    },
}


def emf_problems(line: dict[str, Any]) -> list[str]:
    """What is wrong with ``line`` as an EMF line: the schema's errors, then every dimension a
    directive names that is not a top-level string member, every metric not a top-level number
    (or array of at most 100 numbers)."""
    problems = [error.message for error in Draft202012Validator(EMF_SCHEMA).iter_errors(line)]
    if problems:
        return problems
    for directive in line["_aws"]["CloudWatchMetrics"]:
        for name in {name for dimension_set in directive["Dimensions"] for name in dimension_set}:
            if not isinstance(line.get(name), str):
                problems.append(f"dimension {name} is not a top-level string member")
        for metric in directive["Metrics"]:
            value = line.get(metric["Name"])
            values = value if isinstance(value, list) else [value]
            numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            if not (numbers and 0 < len(values) <= 100):
                problems.append(f"metric {metric['Name']} is not a top-level number or list of numbers")
    return problems


def emf_lines(text: str) -> list[dict[str, Any]]:
    """The EMF lines (those with an ``_aws`` member) among the JSON lines of ``text``."""
    return [line for line in parse_json_lines(text) if "_aws" in line]


def emitted_metrics(lines: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Metric name -> every value the EMF ``lines`` hold for it."""
    values: dict[str, list[float]] = {}
    for line in lines:
        for directive in line["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                value = line[metric["Name"]]
                values.setdefault(metric["Name"], []).extend(value if isinstance(value, list) else [value])
    return values
