"""`describe` refuses or reports the input mistakes it used to pass over silently (issue 14, items 5-9, 13)."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from affectreason.cli import main

FAST = ["--max-new-tokens", "6", "--frames", "2"]


def _describe(capsys, *args):
    code = main(["describe", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def mood_adapter(tiny_qwen2_5_omni, tmp_path_factory):
    """A real peft adapter on the tiny thinker; its adapter_config.json names the checkpoint as its base."""
    from peft import LoraConfig, get_peft_model

    from affectreason.backbones.base import load_backbone

    backbone = load_backbone(str(tiny_qwen2_5_omni), device="cpu")
    config = LoraConfig(r=4, target_modules=backbone.lora_target_modules, task_type="CAUSAL_LM")
    out = tmp_path_factory.mktemp("adapters") / "mood"
    get_peft_model(backbone.model, config).save_pretrained(out)
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == str(
        tiny_qwen2_5_omni
    )
    return out


def test_missing_subtitle_file_is_an_error_and_records_carry_the_transcript(
    capsys, tmp_path, tiny_qwen2_5_omni, clip_av
):
    model = ["--model", str(tiny_qwen2_5_omni)]
    for value in ("missing.srt", str(tmp_path / "subs" / "clip.vtt"), "subs/clip"):
        code, out, err = _describe(capsys, str(clip_av), *model, "--subtitle", value, *FAST)
        assert code == 2 and out == "", err
        assert (
            err
            == f"error: subtitle file not found: '{value}' (pass the transcript text itself, or an existing file)\n"
        )

    srt = tmp_path / "clip.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nI can't believe it\n", encoding="utf-8")
    for value, transcript in ((str(srt), "I can't believe it"), ("so happy and/or relieved", None)):
        code, out, err = _describe(capsys, str(clip_av), *model, "--subtitle", value, "-f", "json", *FAST)
        assert code == 0, err
        assert json.loads(out)["transcript"] == (transcript or value)


def test_same_file_names_in_different_folders_get_unique_stable_ids(
    capsys, tmp_path, tiny_qwen2_5_omni, clip_av
):
    root = tmp_path / "clips"
    for folder in ("a", "b"):
        (root / folder).mkdir(parents=True)
        shutil.copy(clip_av, root / folder / "clip.mp4")
    model = ["--model", str(tiny_qwen2_5_omni), *FAST, "-f", "jsonl"]
    runs = [
        [root],
        [root / "a" / "clip.mp4", root / "b" / "clip.mp4"],
    ]
    for inputs in runs:
        for _ in range(2):  # stable from run to run
            code, out, err = _describe(capsys, *map(str, inputs), *model)
            assert code == 0, err
            records = [json.loads(line) for line in out.splitlines()]
            assert [r["id"] for r in records] == ["a/clip", "b/clip"]
            assert [r["source"] for r in records] == [
                str(root / "a" / "clip.mp4"),
                str(root / "b" / "clip.mp4"),
            ]


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--frames", "0", "--frames must be at least 1, got 0"),
        ("--segment", "-5", "--segment must be a positive number of seconds, got -5.0"),
        ("--temperature", "-1", "--temperature must be at least 0 (0 means greedy), got -1.0"),
        ("--top-p", "5", "--top-p must be in (0, 1], got 5.0"),
        ("--top-k", "-2", "--top-k must be at least 0 (0 means off), got -2"),
        ("--repetition-penalty", "0", "--repetition-penalty must be above 0 (1 means off), got 0.0"),
        ("--batch-size", "0", "--batch-size must be at least 1, got 0"),
    ],
)
def test_bad_numbers_are_refused_before_the_model_loads(capsys, clip_av, tmp_path, flag, value, message):
    # the model folder does not exist: an error about it would mean the model was being loaded first
    code, out, err = _describe(capsys, str(clip_av), "--model", str(tmp_path / "no-model"), flag, value)
    assert (code, out, err) == (2, "", f"error: {message}\n")


def test_long_segment_windows_on_a_30s_audio_model_warn(capsys, tiny_qwen2_5_omni, clip_long):
    args = [str(clip_long), "--model", str(tiny_qwen2_5_omni), "-f", "json", *FAST]
    code, out, err = _describe(capsys, *args, "--segment", "120")
    assert code == 0, err
    assert "warning: --segment 120 is longer than the 30 s of audio the model hears" in err
    assert "pass --segment 30 or less" in err
    assert len(json.loads(out)["timeline"]) == 1


def test_adapter_without_model_uses_the_base_it_records(capsys, tiny_qwen2_5_omni, mood_adapter, clip_av):
    code, out, err = _describe(capsys, str(clip_av), "--adapter", str(mood_adapter), "-f", "json", *FAST)
    assert code == 0, err
    record = json.loads(out)
    assert (record["model"], record["adapter"]) == (str(tiny_qwen2_5_omni), str(mood_adapter))


def test_endpoint_records_carry_the_adapter_asked_for(
    capsys, tiny_qwen2_5_omni, mood_adapter, clip_av, media_dir
):
    from affectreason.backbones.base import load_backbone
    from affectreason.engines.hf import HFEngine
    from affectreason.serve.server import BackgroundServer, ServeOptions, build_app

    engine = HFEngine(load_backbone(str(tiny_qwen2_5_omni), adapter=str(mood_adapter), device="cpu"))
    options = ServeOptions(adapters={"mood": str(mood_adapter)}, media_dir=media_dir)
    with BackgroundServer(build_app(engine, options)) as server:
        args = ["--endpoint", server.url, "--model", "tiny-base", "--adapter", "mood", "-f", "json", *FAST]
        code, out, err = _describe(capsys, str(clip_av), *args)
    assert code == 0, err
    record = json.loads(out)
    assert (record["model"], record["adapter"], record["engine"]) == ("tiny-base", "mood", "openai")


def test_json_output_is_written_record_by_record_without_rewriting_the_file(tmp_path):
    from affectreason.commands.describe_run import _RecordWriter

    path = tmp_path / "out.json"
    writer = _RecordWriter(path, keep=False)
    inode = os.stat(path).st_ino
    before = path.read_bytes()
    records = [{"id": f"clip{i}", "raw": "é\n<think>", "emotions": ["calm"]} for i in range(3)]
    for record in records:
        writer.write(record)
        after = path.read_bytes()
        assert os.stat(path).st_ino == inode  # the same file, appended to, never replaced
        assert after.startswith(before[: -len(b"\n]\n")])  # what was written stays untouched
        assert json.loads(after) == records[: records.index(record) + 1]
        before = after
    writer.close()
    assert writer.records == [] and writer.count == 3


def test_json_out_through_the_cli_is_one_valid_list(
    capsys, tmp_path, tiny_qwen2_5_omni, clip_av, clip_silent
):
    out = tmp_path / "records.json"
    code, _, err = _describe(
        capsys, str(clip_av), str(clip_silent), "--model", str(tiny_qwen2_5_omni), "-o", str(out), *FAST
    )
    assert code == 0, err
    assert [r["id"] for r in json.loads(out.read_text())] == [clip_av.stem, clip_silent.stem]


def test_one_time_library_noise_is_silenced_but_other_warnings_show(
    caplog, tiny_qwen2_5_omni, mood_adapter, clip_av
):
    import logging
    import subprocess
    import sys
    import warnings

    command = [sys.executable, "-m", "affectreason", "describe", str(clip_av), "--adapter", str(mood_adapter)]
    result = subprocess.run([*command, "-f", "json", *FAST], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "gemm_4bit_forward" not in result.stderr and "is_gradient_checkpointing" not in result.stderr
    assert json.loads(result.stdout)["adapter"] == str(mood_adapter)

    from affectreason.quiet import silence_library_noise

    silence_library_noise()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        silence_library_noise()
        warnings.warn(
            "`is_gradient_checkpointing` is deprecated and will be removed in v6.",
            FutureWarning,
            stacklevel=1,
        )
        warnings.warn("a deprecation that matters", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["a deprecation that matters"]
    name = "bitsandbytes.backends.cpu.ops"
    with caplog.at_level(logging.WARNING, logger=name):
        logging.getLogger(name).warning(
            "Failed to load CPU gemm_4bit_forward from kernels-community: %s.", "x"
        )
        logging.getLogger(name).warning("4-bit weights are unsupported on this CPU")
    assert [r.getMessage() for r in caplog.records if r.name == name] == [
        "4-bit weights are unsupported on this CPU"
    ]


def test_version():
    import subprocess
    import sys

    from affectreason import __version__

    result = subprocess.run(
        [sys.executable, "-m", "affectreason", "--version"], capture_output=True, text=True
    )
    assert (result.returncode, result.stdout) == (0, f"affectreason {__version__}\n")


def test_progress_counts_clips_and_segment_windows(tiny_qwen2_5_omni, clip_long, clip_av):
    from affectreason.pipeline import DescribeOptions, create_engine, describe_paths

    engine = create_engine("hf", model=str(tiny_qwen2_5_omni))
    options = DescribeOptions(frames=2, max_new_tokens=4, segment=10, batch_size=2)
    clips, windows, records = [], [], []
    failures = describe_paths(
        [clip_long, clip_av],
        engine,
        options,
        on_record=records.append,
        on_warning=lambda message: None,
        progress=clips.append,
        window_progress=lambda done, total: windows.append((done, total)),
    )
    assert not failures and clips == [1, 1]
    long_windows = len(records[0]["timeline"])
    assert long_windows >= 3
    assert windows[: (long_windows + 1) // 2][-1] == (long_windows, long_windows)
    assert windows[-1] == (1, 1)
