"""Transcript replay testing: recorded conversations replayed as regression tests.

    from chatbot.transcripts import load_transcripts, replay
    report = replay(load_transcripts(["transcripts/greet.yml"]), bot=bot)
    assert report.ok, format_report(report)

See docs/transcripts.md for the file format (version 1) and the matchers.
"""

from __future__ import annotations

from chatbot.transcripts.loading import (
    is_transcript,
    load_transcript,
    load_transcripts,
    read_transcript,
    transcript_files,
)
from chatbot.transcripts.matchers import Matcher, Mismatch, Observation, normalize
from chatbot.transcripts.output import to_json, to_junit
from chatbot.transcripts.report import format_report, format_result, format_summary
from chatbot.transcripts.results import ReplayReport, TranscriptResult, TurnResult
from chatbot.transcripts.runner import NullStore, replay, replay_bot_for
from chatbot.transcripts.schema import SCHEMA_VERSION, Transcript, Turn, replay_session_id
from chatbot.transcripts.suite import (
    TRANSCRIPTS_DIR,
    ReplayOutcome,
    bot_dir_of,
    find_transcripts,
    replay_paths,
)
from chatbot.transcripts.update import TextUpdate, update_texts
from chatbot.transcripts.writer import TranscriptWriter, record_turn

__all__ = [
    "SCHEMA_VERSION",
    "TRANSCRIPTS_DIR",
    "Matcher",
    "Mismatch",
    "NullStore",
    "Observation",
    "ReplayOutcome",
    "ReplayReport",
    "TextUpdate",
    "Transcript",
    "TranscriptResult",
    "TranscriptWriter",
    "Turn",
    "TurnResult",
    "bot_dir_of",
    "find_transcripts",
    "format_report",
    "format_result",
    "format_summary",
    "is_transcript",
    "load_transcript",
    "load_transcripts",
    "normalize",
    "read_transcript",
    "record_turn",
    "replay",
    "replay_bot_for",
    "replay_paths",
    "replay_session_id",
    "to_json",
    "to_junit",
    "transcript_files",
    "update_texts",
]
