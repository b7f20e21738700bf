"""`affectreason describe` end to end: tiny random backbones, real media files, the CLI and the Python API."""

import json
import subprocess
import sys

import pytest

from affectreason.cli import main
from affectreason.describe import DescribeOptions, describe_clips, summarise_timeline
from affectreason.engines import create_engine
from affectreason.media import load_clip
from affectreason.rationale import Rationale

RECORD_KEYS = {
    "id",
    "source",
    "emotions",
    "families",
    "visual_cues",
    "acoustic_cues",
    "lexical_cues",
    "reasoning",
    "valence",
    "arousal",
    "confidence",
    "parse_ok",
    "raw",
    "model",
    "adapter",
    "prompt_version",
}
FAST = ["--max-new-tokens", "8", "--frames", "4"]


def _describe(capsys, *args):
    code = main(["describe", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _well_formed(record):
    assert RECORD_KEYS <= set(record)
    assert isinstance(record["parse_ok"], bool)
    assert all(
        isinstance(record[k], list) for k in ("emotions", "visual_cues", "acoustic_cues", "lexical_cues")
    )
    assert isinstance(record["raw"], str)


@pytest.fixture(scope="module")
def omni_engine(tiny_qwen2_5_omni):
    return create_engine("hf", model=str(tiny_qwen2_5_omni))


@pytest.mark.parametrize("family", ["tiny_qwen2_5_omni", "tiny_qwen3_omni", "tiny_qwen_vl", "tiny_llava"])
def test_every_family_describes_a_clip_through_the_cli(request, capsys, family, clip_av):
    checkpoint = request.getfixturevalue(family)
    code, out, err = _describe(capsys, str(clip_av), "--model", str(checkpoint), "--format", "json", *FAST)
    assert code == 0, err
    record = json.loads(out)
    _well_formed(record)
    assert record["model"] == str(checkpoint)
    assert record["source"] == str(clip_av)


@pytest.mark.parametrize("media", ["clip_silent", "audio_wav", "clip_rotated", "clip_one_frame", "clip_odd"])
def test_unusual_media_are_described(request, omni_engine, media):
    clip = load_clip(request.getfixturevalue(media), frames=4)
    (record,) = describe_clips([clip], omni_engine, DescribeOptions(max_new_tokens=6))
    _well_formed(record)


def test_batch_keeps_good_clips_and_reports_failures(
    capsys, tmp_path, tiny_qwen2_5_omni, clip_av, clip_silent, not_media_file
):
    out = tmp_path / "rationales.jsonl"
    args = [str(clip_av), str(not_media_file), str(clip_silent), "--model", str(tiny_qwen2_5_omni)]
    code, stdout, err = _describe(capsys, *args, "--format", "jsonl", "--out", str(out), *FAST)
    assert code == 1
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in lines] == [clip_av.stem, clip_silent.stem]
    assert len(stdout.splitlines()) == 2
    assert f"error: cannot decode '{not_media_file}'" in err
    assert "1 of 3 clips failed" in err
    assert "Traceback" not in err


def test_text_output_and_transcript(capsys, tiny_qwen2_5_omni, clip_av):
    code, out, _ = _describe(
        capsys, str(clip_av), "--model", str(tiny_qwen2_5_omni), "--subtitle", "I am so happy today", *FAST
    )
    assert code == 0
    for label in ("visual", "acoustic", "lexical", "reasoning", "emotions", "valence", "parse_ok"):
        assert label in out


def test_long_clip_warns_without_segment_and_segments_with_it(capsys, tiny_qwen2_5_omni, clip_long):
    code, _, err = _describe(
        capsys, str(clip_long), "--model", str(tiny_qwen2_5_omni), "--format", "json", *FAST
    )
    assert code == 0
    assert "warning:" in err and "dropped" in err and "--segment" in err

    code, out, err = _describe(
        capsys,
        str(clip_long),
        "--model",
        str(tiny_qwen2_5_omni),
        "--format",
        "json",
        "--segment",
        "25",
        *FAST,
    )
    assert code == 0
    record = json.loads(out)
    _well_formed(record)
    windows = record["timeline"]
    assert [(w["start"], w["end"]) for w in windows][0] == (0.0, 25.0)
    assert windows[-1]["end"] == pytest.approx(load_clip(clip_long, frames=1).duration, abs=0.2)
    assert "warning:" not in err


def test_missing_weights_and_adapter_fail_with_one_line(capsys, tiny_qwen2_5_omni, clip_av, tmp_path):
    code, _, err = _describe(capsys, str(clip_av), "--model", "Qwen/Qwen2.5-Omni-3B")
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("error:") and "--model PATH" in err

    code, _, err = _describe(
        capsys, str(clip_av), "--model", str(tiny_qwen2_5_omni), "--adapter", str(tmp_path)
    )
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("error:")


def test_bad_inputs_get_one_line(capsys, tiny_qwen2_5_omni, tmp_path, empty_file):
    code, _, err = _describe(capsys, str(tmp_path / "missing.mp4"), "--model", str(tiny_qwen2_5_omni))
    assert code == 2 and err.startswith("error: file not found")
    code, _, err = _describe(capsys, str(empty_file), "--model", str(tiny_qwen2_5_omni))
    assert code == 1 and "error:" in err and "Traceback" not in err


def test_python_api_is_deterministic_under_greedy(omni_engine, clip_av):
    clip = load_clip(clip_av, frames=4)
    options = DescribeOptions(max_new_tokens=8)
    first = describe_clips([clip, clip], omni_engine, options)
    second = describe_clips([clip], omni_engine, options)
    assert first[0]["raw"] == first[1]["raw"] == second[0]["raw"]
    assert first[0]["decoding"]["temperature"] == 0.0


def test_timeline_summary_ranks_by_windows():
    windows = [
        Rationale(emotions=["calm"], valence=0.2, visual_cues=["still"], parse_ok=True),
        Rationale(emotions=["angry", "calm"], valence=-0.6, visual_cues=["frown", "still"], parse_ok=True),
        Rationale(emotions=["angry"], valence=-0.8, parse_ok=True),
    ]
    summary = summarise_timeline(windows)
    assert summary.emotions == ["calm", "angry"]
    assert summary.visual_cues == ["still", "frown"]
    assert summary.valence == pytest.approx(-0.4)
    assert summary.parse_ok


def test_help_is_light():
    code = (
        "import sys, affectreason.cli; "
        "heavy = {'torch', 'transformers', 'sentence_transformers'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    result = subprocess.run([sys.executable, "-m", "affectreason", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "describe" in result.stdout
