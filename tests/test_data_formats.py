"""ShareGPT / messages rows (LLaMA-Factory, ms-swift), JSON arrays, per-row problems, `data convert`, and training
a tiny model on a ShareGPT file end to end."""

import json
import shutil

import pytest

from affectreason.cli import main
from affectreason.rationale import Rationale, render_canonical
from affectreason.train.data import load_captions, validate_captions

CANONICAL = render_canonical(Rationale(reasoning="She laughs.", emotions=["happy"]))


def _messages(answer, user="<video>How does she feel?"):
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": user}] + (
        [{"role": "assistant", "content": answer}] if answer is not None else []
    )


@pytest.fixture
def media(tmp_path, clip_av, clip_silent, audio_wav, truncated_file, not_media_file):
    for src in (clip_av, clip_silent, audio_wav, truncated_file, not_media_file):
        shutil.copy(src, tmp_path / src.name)
    return {
        "av": clip_av.name,
        "silent": clip_silent.name,
        "wav": audio_wav.name,
        "cut": truncated_file.name,
        "junk": not_media_file.name,
    }


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_sharegpt_messages_and_conversations_read_as_clips(tmp_path, media):
    rows = [
        {"id": "m1", "messages": _messages(CANONICAL), "videos": [media["av"]]},
        {
            "id": "m2",
            "conversations": [
                {"from": "human", "value": "<video><audio>What does he feel?"},
                {"from": "gpt", "value": "He looks down, quiet and slow."},
            ],
            "videos": [media["silent"]],
            "audios": [media["wav"]],
            "emotions": ["sad"],
        },
        {  # OpenAI-style content parts, audio only
            "id": "m3",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "<audio>Tone?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": "A bright, excited voice."}]},
            ],
            "audios": [media["wav"]],
        },
    ]
    path = tmp_path / "train.json"
    path.write_text(json.dumps(rows))  # a JSON array, as LLaMA-Factory writes
    report = validate_captions(path)
    assert report.ok, report.problems
    first, second, third = report.examples
    assert first.video == str(tmp_path / media["av"]) and first.caption == CANONICAL
    assert second.audio == str(tmp_path / media["wav"]) and second.emotions == ["sad"]
    assert second.caption == "He looks down, quiet and slow."
    assert third.video is None and third.caption == "A bright, excited voice."


def test_every_problem_of_a_row_is_reported(tmp_path, media):
    rows = [
        # both media files undecodable: two problems on one row
        {"id": "r1", "messages": _messages("fine"), "videos": [media["cut"]], "audios": [media["junk"]]},
        # missing files, two videos, placeholder mismatch, no assistant turn: all reported
        {"id": "r2", "messages": _messages(None, "<video><video>?"), "videos": ["gone.mp4", "gone2.mp4"]},
        {"id": "r2", "messages": _messages("dup id"), "videos": [media["av"]]},
        {"id": "r4", "messages": _messages("off the wheel"), "videos": [media["av"]], "emotions": ["zqxv"]},
        {"id": "r5", "messages": _messages("images"), "images": ["x.png"], "videos": [media["av"]]},
        {"id": "r6", "messages": "not a list"},
    ]
    report = validate_captions(_jsonl(tmp_path / "rows.jsonl", rows))
    by_row = {}
    for p in report.problems:
        by_row.setdefault(p.row, []).append((p.kind, p.message))
    assert [k for k, _ in by_row[1]] == ["undecodable", "undecodable"]
    kinds2 = [k for k, _ in by_row[2]]
    assert kinds2.count("missing_file") == 1 and "empty_caption" in kinds2
    messages2 = " | ".join(m for _, m in by_row[2])
    assert "2 videos in one row" in messages2 and "empty target" in messages2
    assert [k for k, _ in by_row[3]] == ["duplicate_id"]
    assert by_row[4] == [("unmapped_label", "label 'zqxv' maps to no emotion-wheel family")]
    assert "images are not supported" in by_row[5][0][1]
    assert "must be a list of turns" in by_row[6][0][1]
    # the off-wheel label is a warning: that row still trains
    assert "r4" in {e.id for e in report.examples} and not report.ok


def test_placeholder_count_must_match_the_media(tmp_path, media):
    rows = [{"messages": _messages("x", "<video> and <video>"), "videos": [media["av"]]}]
    report = validate_captions(_jsonl(tmp_path / "p.jsonl", rows), decode=False)
    assert [p.message for p in report.problems] == ["2 <video> placeholders for 1 video files"]


def test_canonical_targets_checked_when_the_recipe_expects_them(tmp_path, media, capsys):
    rows = [
        {"id": "ok", "messages": _messages(CANONICAL), "videos": [media["av"]]},
        {"id": "free", "messages": _messages("she is happy"), "videos": [media["av"]]},
    ]
    path = _jsonl(tmp_path / "c.jsonl", rows)
    assert main(["data", "validate", str(path), "--no-decode"]) == 0
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: sft\ndata:\n  target_format: canonical\n")
    assert main(["data", "validate", str(path), "--no-decode", "--recipe", str(recipe)]) == 1
    out = capsys.readouterr().out
    assert "not_canonical (1)" in out and "[free]" in out and "[ok]" not in out
    with pytest.raises(Exception, match="canonical"):
        load_captions(path, canonical=True)


def test_data_convert_writes_our_jsonl(tmp_path, media, capsys):
    rows = [
        {"id": "a", "messages": _messages("She laughs."), "videos": [media["av"]], "emotions": ["happy"]},
        {"id": "b", "conversations": [{"from": "gpt", "value": "x"}], "videos": ["missing.mp4"]},
    ]
    src = tmp_path / "in.json"
    src.write_text(json.dumps(rows))
    out = tmp_path / "converted" / "captions.jsonl"
    assert main(["data", "convert", str(src), str(out)]) == 1  # one row left out
    assert "wrote 1 rows" in capsys.readouterr().out
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert row == {"id": "a", "video": f"../{media['av']}", "caption": "She laughs.", "emotions": ["happy"]}
    assert validate_captions(out).ok  # the converted file reads back, media paths relative to it
    assert main(["data", "convert", str(src), str(out)]) == 2  # exists: refused without --force
    assert "--force" in capsys.readouterr().err


def test_a_sharegpt_file_trains_a_tiny_model(tmp_path, media, tiny_qwen2_5_omni):
    rows = [
        {"id": "a", "messages": _messages(CANONICAL), "videos": [media["av"]]},
        {"id": "b", "messages": _messages("He looks down, sad."), "videos": [media["silent"]]},
    ]
    data = _jsonl(tmp_path / "sharegpt.jsonl", rows)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"method: sft\nmodel: {{name_or_path: {tiny_qwen2_5_omni}}}\n")
    out = tmp_path / "run"
    overrides = [
        f"data.path={data}",
        "data.frames=2",
        f"output_dir={out}",
        "max_steps=2",
        "per_device_train_batch_size=2",
        "dataloader_num_workers=0",
        "report_to=none",
        "lora.r=4",
    ]
    assert main(["train", "sft", str(recipe), *overrides]) == 0
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["data"]["rows"] == 2 and manifest["metrics"]["train_loss"] > 0
    assert (out / "adapter_model.safetensors").is_file()


def test_hostile_json_is_one_error_line(tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert main(["data", "validate", str(deep)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([{"messages": [{"role": "user", "content": "\x00" * 10}], "videos": 5}, 7]))
    report = validate_captions(rows, decode=False)
    assert {p.kind for p in report.problems} == {"missing_file", "empty_caption", "bad_row"}
