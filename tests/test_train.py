"""The training loop: schedule, resume determinism, metrics, distributed ranks."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from chatbot.checkpoint import latest_checkpoint, load_model, read_safetensors
from chatbot.config import Config
from chatbot.errors import EmptyCorpusError, TrainingError
from chatbot.train import lr_factor, train


def _config(corpus: Path, *extra: str) -> Config:
    return Config.preset("tiny").override(
        [f"data.source=jsonl:{corpus}", "model.dropout=0.1", "train.eval_interval=4",
         "train.checkpoint_interval=4", "train.log_interval=2", *extra]
    )


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return read_safetensors(folder / "model.safetensors")


def test_lr_schedule_warms_up_then_decays_to_the_floor() -> None:
    factors = [lr_factor(s, warmup=4, total=12, min_ratio=0.1) for s in range(13)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[8] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert factors[12] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(factors[3:], factors[4:], strict=False))


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(
    tmp_path: Path, corpus_file: Path
) -> None:
    config = _config(corpus_file)
    straight = train(config, out_dir=tmp_path / "straight", max_steps=10)
    train(config, out_dir=tmp_path / "resumed", max_steps=5)
    resumed = train(config, out_dir=tmp_path / "resumed", max_steps=10, resume=True)
    assert straight.steps == resumed.steps == 10
    a = _weights(latest_checkpoint(tmp_path / "straight" / "checkpoints"))  # type: ignore[arg-type]
    b = _weights(latest_checkpoint(tmp_path / "resumed" / "checkpoints"))  # type: ignore[arg-type]
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert straight.target_tokens == resumed.target_tokens


def test_resume_skips_a_partial_checkpoint(tmp_path: Path, corpus_file: Path) -> None:
    config = _config(corpus_file)
    train(config, out_dir=tmp_path / "run", max_steps=8)
    checkpoints = tmp_path / "run" / "checkpoints"
    partial = checkpoints / "step-00000099"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"partial")
    assert latest_checkpoint(checkpoints) == checkpoints / "step-00000008"
    result = train(config, out_dir=tmp_path / "run", max_steps=10, resume=True)
    assert result.steps == 10


def test_resume_without_a_checkpoint_is_an_error(tmp_path: Path, corpus_file: Path) -> None:
    with pytest.raises(TrainingError, match="no verified checkpoint"):
        train(_config(corpus_file), out_dir=tmp_path / "none", resume=True)


def test_metrics_records_have_the_documented_fields(tmp_path: Path, corpus_file: Path) -> None:
    result = train(_config(corpus_file), out_dir=tmp_path / "run", max_steps=6)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert records[0]["event"] == "start"
    logs = [r for r in records if r["event"] == "log"]
    assert [r["step"] for r in logs] == [2, 4, 6]
    for record in logs:
        assert {"step", "epoch", "loss", "val_ppl", "target_tokens", "elapsed_s"} <= record.keys()
    assert logs[-1]["val_ppl"] is not None
    summary = records[-1]
    assert summary["event"] == "summary"
    assert summary["step"] == 6
    assert summary["target_tokens"] == result.target_tokens
    assert [r["target_tokens"] for r in logs] == sorted(r["target_tokens"] for r in logs)


def test_the_best_model_is_saved_with_provenance(tmp_path: Path, corpus_file: Path) -> None:
    result = train(_config(corpus_file), out_dir=tmp_path / "run", max_steps=8)
    loaded = load_model(tmp_path / "run" / "model")
    assert loaded.info["corpus"] == f"jsonl:{corpus_file}"
    assert loaded.info["split_seed"] == 0
    assert loaded.info["val_ppl"] == pytest.approx(result.best_val_ppl)
    assert loaded.info["conversations"] == {"train": 108, "valid": 6, "test": 6}


def test_an_empty_corpus_is_an_error_not_a_zero_step_run(tmp_path: Path) -> None:
    corpus = tmp_path / "empty.jsonl"
    corpus.write_text('["only one turn"]\n')
    with pytest.raises(EmptyCorpusError):
        train(_config(corpus), out_dir=tmp_path / "run")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rank_worker(rank: int, world: int, port: int, corpus: str, out: str) -> None:
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        result = train(_config(Path(corpus)), out_dir=Path(out), max_steps=4)
        from safetensors.torch import save_file

        weights = {k: v.detach().contiguous() for k, v in result.model.named_parameters()}
        save_file(weights, str(Path(out).parent / f"rank{rank}.safetensors"))
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_end_with_identical_weights(tmp_path: Path, corpus_file: Path) -> None:
    out = tmp_path / "ddp" / "run"
    mp.spawn(_rank_worker, args=(2, _free_port(), str(corpus_file), str(out)), nprocs=2)
    rank0 = read_safetensors(tmp_path / "ddp" / "rank0.safetensors")
    rank1 = read_safetensors(tmp_path / "ddp" / "rank1.safetensors")
    for name in rank0:
        assert torch.equal(rank0[name], rank1[name]), name
    saved = _weights(out / "model")
    assert saved.keys() == rank0.keys()
    start = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    assert start["world_size"] == 2


@pytest.mark.slow
def test_torchrun_cli_trains_with_two_processes(tmp_path: Path, corpus_file: Path) -> None:
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        f"--master_port={_free_port()}", "-m", "chatbot", "train", "--config", "tiny",
        "--data", f"jsonl:{corpus_file}", "--out", str(out), "--max-steps", "4", "--quiet",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert load_model(out / "model").info["steps"] in (4, 3, 2, 1)


def test_a_checkpoint_before_the_first_evaluation_resumes(
    tmp_path: Path, corpus_file: Path
) -> None:
    config = _config(corpus_file, "train.eval_interval=100", "train.checkpoint_interval=2")
    train(config, out_dir=tmp_path / "run", max_steps=3)
    result = train(config, out_dir=tmp_path / "run", max_steps=6, resume=True)
    assert result.steps == 6
