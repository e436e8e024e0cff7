"""Machine-readable replay results: JSON, and JUnit XML for CI systems."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from chatbot.transcripts.report import display_path, format_result
from chatbot.transcripts.results import ReplayReport, TranscriptResult


def to_json(report: ReplayReport) -> str:
    """The report as indented JSON (see `ReplayReport.to_dict`)."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False)


def to_junit(report: ReplayReport) -> str:
    """The report as JUnit XML: one `testcase` per transcript, in one `testsuite`.

    A failed transcript has a `failure` whose text is the plain-text report; one
    that could not be played has an `error`; one `--fail-fast` stopped is `skipped`.
    """
    counts = {
        "tests": str(len(report.results)),
        "failures": str(report.count("failed")),
        "errors": str(report.count("error")),
        "skipped": str(report.count("skipped")),
        "time": f"{report.duration_s:.3f}",
    }
    root = ET.Element("testsuites", {"name": "chatbot replay", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": ", ".join(report.bots), **counts})
    for result in report.results:
        _testcase(suite, result)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"


def _testcase(suite: ET.Element, result: TranscriptResult) -> None:
    path = display_path(result.transcript.path)
    case = ET.SubElement(suite, "testcase", {
        "classname": _classname(path),
        "name": result.transcript.name,
        "file": path,
        "line": "1",
        "time": f"{result.duration_s:.3f}",
    })
    if result.status == "skipped":
        ET.SubElement(case, "skipped", {"message": "not finished: --fail-fast stopped the run"})
    elif result.status in ("failed", "error"):
        tag = "failure" if result.status == "failed" else "error"
        attributes = {"message": _message(result), "type": f"transcript {tag}"}
        element = ET.SubElement(case, tag, attributes)
        element.text = format_result(result)


def _classname(path: str) -> str:
    stem = Path(path).with_suffix("")
    return ".".join(part for part in stem.parts if part not in ("..", "/"))


def _message(result: TranscriptResult) -> str:
    """One line: the first problem's turn, line and expectation."""
    turn = result.problems[0]
    if turn.error is not None:
        return f"turn {turn.index} (line {turn.line}): {turn.error}"
    first = turn.mismatches[0]
    return f"turn {turn.index} (line {turn.line}): expected {first.expected}, got {first.actual}"
