"""A checker of CloudWatch Embedded Metric Format documents, written from the specification
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)
and its JSON schema, independently of ``sidecar.metrics``: the tests hold the sidecar's lines to it.
"""

from __future__ import annotations

import json
from typing import Any

# The schema's MetricUnit pattern.
UNITS = frozenset({
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
    "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
    "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
    "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
})
MAX_METRICS = 100  # MetricDefinition objects per MetricDirective
MAX_DIMENSIONS = 30  # dimension keys per DimensionSet
MAX_DIMENSION_VALUE = 1024  # characters of a dimension target's value
MAX_VALUES = 100  # members of a numeric array metric target


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def problems(document: Any) -> list[str]:
    """Every way ``document`` breaks the specification; empty when it is a valid EMF document."""
    found: list[str] = []
    if not isinstance(document, dict):
        return ["the root is not a JSON object"]
    metadata = document.get("_aws")
    if not isinstance(metadata, dict):
        return ["no _aws object at the root"]
    timestamp = metadata.get("Timestamp")
    if not isinstance(timestamp, int) or isinstance(timestamp, bool) or timestamp < 0:
        found.append("_aws.Timestamp is not a whole number of milliseconds since the epoch")
    directives = metadata.get("CloudWatchMetrics")
    if not isinstance(directives, list) or not directives:
        return [*found, "_aws.CloudWatchMetrics is not a non-empty array"]
    for index, directive in enumerate(directives):
        where = f"CloudWatchMetrics[{index}]"
        if not isinstance(directive, dict):
            found.append(f"{where} is not an object")
            continue
        if set(directive) != {"Namespace", "Dimensions", "Metrics"}:
            found.append(f"{where} has members {sorted(directive)}, not exactly Namespace, Dimensions, Metrics")
        namespace = directive.get("Namespace")
        if not isinstance(namespace, str) or not namespace:
            found.append(f"{where}.Namespace is not a non-empty string")
        found += _dimension_problems(document, directive.get("Dimensions"), where)
        found += _metric_problems(document, directive.get("Metrics"), where)
    return found


def _dimension_problems(document: dict[str, Any], sets: object, where: str) -> list[str]:
    if not isinstance(sets, list) or not sets:
        return [f"{where}.Dimensions is not a non-empty array of DimensionSets"]
    found = []
    for dimension_set in sets:
        if not isinstance(dimension_set, list) or not all(isinstance(key, str) and key for key in dimension_set):
            found.append(f"{where}: DimensionSet {dimension_set!r} is not an array of strings")
            continue
        if len(dimension_set) > MAX_DIMENSIONS:
            found.append(f"{where}: a DimensionSet holds {len(dimension_set)} keys, more than {MAX_DIMENSIONS}")
        for key in dimension_set:
            value = document.get(key)
            if not isinstance(value, str):
                found.append(f"dimension {key!r} is not a string member of the root")
            elif not value or len(value) > MAX_DIMENSION_VALUE:
                found.append(f"dimension {key!r} has {len(value)} characters")
    return found


def _metric_problems(document: dict[str, Any], metrics: object, where: str) -> list[str]:
    if not isinstance(metrics, list):
        return [f"{where}.Metrics is not an array"]
    found = []
    if len(metrics) > MAX_METRICS:
        found.append(f"{where}.Metrics holds {len(metrics)} definitions, more than {MAX_METRICS}")
    for definition in metrics:
        if not isinstance(definition, dict) or not isinstance(definition.get("Name"), str):
            found.append(f"{where}: MetricDefinition {definition!r} has no string Name")
            continue
        if set(definition) - {"Name", "Unit", "StorageResolution"}:
            found.append(f"{where}: MetricDefinition {definition['Name']!r} has unknown members")
        if "Unit" in definition and definition["Unit"] not in UNITS:
            found.append(f"metric {definition['Name']!r} has unit {definition['Unit']!r}, not a CloudWatch unit")
        if definition.get("StorageResolution", 60) not in (1, 60):
            found.append(f"metric {definition['Name']!r} has a StorageResolution other than 1 or 60")
        value = document.get(definition["Name"])
        numbers = value if isinstance(value, list) else [value]
        if not numbers or not all(_number(n) for n in numbers) or len(numbers) > MAX_VALUES:
            found.append(f"metric {definition['Name']!r} is not a number (or array of numbers) at the root")
    return found


def parse_line(line: str) -> dict[str, Any]:
    """One log line as CloudWatch Logs reads it: a JSON object with nothing before or after it."""
    assert "\n" not in line.rstrip("\n"), "an EMF document must be one log event: one line"
    document = json.loads(line)
    assert isinstance(document, dict)
    return document
