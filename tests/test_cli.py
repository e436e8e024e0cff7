"""The `chatbot` command's train and eval subcommands, in process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chatbot.cli import main


def test_unknown_override_key_exits_2_listing_valid_keys(
    tmp_path: Path, corpus_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", "--config", "tiny", "--data", f"jsonl:{corpus_file}",
                 "--out", str(tmp_path / "run"), "model.hiden_size=8"])
    err = capsys.readouterr().err
    assert code == 2
    assert "unknown key 'model.hiden_size' (did you mean 'model.hidden_size'?)" in err
    assert "train.batch_size" in err


def test_bad_value_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--config", "tiny", "--out", str(tmp_path), "model.attention=cosine"])
    assert code == 2
    assert "model.attention must be one of dot, general, concat (got 'cosine')" in (
        capsys.readouterr().err
    )


def test_malformed_corpus_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = tmp_path / "bad.jsonl"
    corpus.write_text('["a", "b"]\n["c", \n')
    code = main(["train", "--config", "tiny", "--data", f"jsonl:{corpus}", "--out",
                 str(tmp_path / "run")])
    assert code == 2
    assert f"{corpus}:2:7: invalid JSON" in capsys.readouterr().err


def test_eval_reports_both_perplexities_as_json(
    tiny_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", str(tiny_run), "--split", "all", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == str(tiny_run / "model")
    assert report["split"] == "all"
    assert report["conversations"] == 120
    assert report["ppl_with_state"] > 1.0
    assert report["ppl_without_state"] > 1.0
    assert report["target_tokens"] > 0


def test_python_dash_m_is_the_same_command() -> None:
    done = subprocess.run([sys.executable, "-m", "chatbot", "--help"], capture_output=True,
                          text=True)
    assert done.returncode == 0
    assert "train" in done.stdout and "eval" in done.stdout


def test_chat_without_bot_dir_uses_the_current_folder_when_it_is_a_bot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io

    from chatbot.botdir import scaffold
    from chatbot.cli import main

    scaffold(tmp_path / "mybot")
    intents = tmp_path / "mybot" / "intents"
    (intents / "zz.yml").write_text(
        "version: 1\nintents:\n  - name: secret\n    override: true\n"
        "    patterns: ['^open sesame$']\n    responses: [the cave opens]\n")
    monkeypatch.chdir(tmp_path / "mybot")
    monkeypatch.setattr("sys.stdin", io.StringIO("open sesame\n"))
    assert main(["chat", "--seed", "1"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "the cave opens"
    monkeypatch.chdir(tmp_path)  # not a bot directory: the packaged default bot
    monkeypatch.setattr("sys.stdin", io.StringIO("open sesame\n"))
    assert main(["chat", "--seed", "1"]) == 0
    assert "the cave opens" not in capsys.readouterr().out
