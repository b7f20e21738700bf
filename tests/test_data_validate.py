"""Caption files: CSV / JSONL / folders, every kind of bad row caught by `data validate`, SFT targets."""

import csv
import json
import shutil

import pytest

from affectreason.cli import main
from affectreason.errors import AffectReasonError
from affectreason.rationale import Rationale, parse_rationale, render_canonical
from affectreason.train.data import (
    CaptionExample,
    data_summary,
    load_captions,
    parse_emotions,
    target_text,
    training_rows,
    validate_captions,
)


def _write_csv(path, rows, header=("id", "video", "caption", "emotions", "subtitle", "valence")):
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture
def data_dir(tmp_path, clip_av, clip_silent, audio_wav, truncated_file, not_media_file):
    """Media copied next to the caption file so paths are relative, as a user's folder would be."""
    clips = tmp_path / "clips"
    clips.mkdir()
    for src in (clip_av, clip_silent, audio_wav, truncated_file, not_media_file):
        shutil.copy(src, clips / src.name)
    (clips / "a.srt").write_text("1\n00:00:00,000 --> 00:00:01,000\nI did it!\n")
    return tmp_path


def test_good_csv_validates_and_builds_targets(data_dir, clip_av, clip_silent):
    path = _write_csv(
        data_dir / "captions.csv",
        [
            (
                "c1",
                f"clips/{clip_av.name}",
                "She laughs and smiles broadly.",
                "happy, excited",
                "clips/a.srt",
                "0.8",
            ),
            ("c2", f"clips/{clip_silent.name}", "He stares at the floor in silence.", "", "", ""),
            ("c3", f"clips/{clip_av.name}", "", "['sad']", "it is over", ""),
        ],
    )
    report = validate_captions(path)
    assert report.ok and report.rows == 3 and len(report.examples) == 3
    first, second, third = report.examples
    assert first.video == str((data_dir / "clips" / clip_av.name).resolve())
    assert first.subtitle == str((data_dir / "clips" / "a.srt").resolve())
    assert first.emotions == ["happy", "excited"] and first.valence == pytest.approx(0.8)

    # caption + emotions: caption is the reasoning, emotions the answer, valence carried
    parsed = parse_rationale(target_text(first))
    assert (
        parsed.parse_ok and parsed.emotions == ["happy", "excited"] and parsed.valence == pytest.approx(0.8)
    )
    assert parsed.reasoning == "She laughs and smiles broadly."
    # a caption alone is kept as the reasoning
    assert parse_rationale(target_text(second)).reasoning == "He stares at the floor in silence."
    # emotions alone become a short answer
    short = parse_rationale(target_text(third))
    assert short.parse_ok and short.emotions == ["sad"] and short.reasoning == "none"

    rows = training_rows(report.examples)
    assert [r["id"] for r in rows] == ["c1", "c2", "c3"] and rows[2]["subtitle"] == "it is over"
    assert data_summary(report.examples)["with_emotions"] == 2
    assert main(["data", "validate", str(path)]) == 0


def test_caption_in_canonical_format_is_kept():
    target = Rationale(emotions=["angry"], visual_cues=["frown"], acoustic_cues=["shouting"], reasoning="x y")
    example = CaptionExample(id="a", row=1, video="v.mp4", caption=render_canonical(target))
    parsed = parse_rationale(target_text(example))
    assert (
        parsed.visual_cues == ["frown"]
        and parsed.acoustic_cues == ["shouting"]
        and parsed.emotions == ["angry"]
    )


def test_caption_without_emotions_takes_labels_from_the_text():
    example = CaptionExample(id="a", row=1, video="v.mp4", caption="She is clearly angry and a bit worried.")
    emotions = parse_rationale(target_text(example)).emotions
    assert "angry" in emotions or "anger" in emotions


def test_every_kind_of_bad_row_is_reported(data_dir, clip_av, truncated_file, not_media_file, capsys):
    good = f"clips/{clip_av.name}"
    path = _write_csv(
        data_dir / "bad.csv",
        [
            ("ok", good, "fine", "happy", "", ""),  # row 1
            ("gone", "clips/missing.mp4", "fine", "", "", ""),  # row 2: missing_file
            ("cut", f"clips/{truncated_file.name}", "fine", "", "", ""),  # row 3: undecodable
            ("text", f"clips/{not_media_file.name}", "fine", "", "", ""),  # row 4: undecodable
            ("blank", good, "   ", "", "", ""),  # row 5: empty_caption
            ("ok", good, "again", "", "", ""),  # row 6: duplicate_id
            ("labels", good, "", "['happy', ", "", ""),  # row 7: bad_labels
            ("labels2", good, "x", "happy sad angry surprised", "", ""),  # row 8: bad_labels
            ("val", good, "x", "", "", "2.5"),  # row 9: bad_value
            ("nomedia", "", "x", "", "", ""),  # row 10: missing_media
            ("srt", good, "x", "", "clips/none.srt", ""),  # row 11: missing_file (subtitle)
        ],
    )
    report = validate_captions(path)
    assert report.counts() == {
        "missing_media": 1,
        "missing_file": 2,
        "undecodable": 2,
        "empty_caption": 1,
        "duplicate_id": 1,
        "bad_labels": 2,
        "bad_value": 1,
    }
    by_kind = {kind: [p.row for p in ps] for kind, ps in report.first().items()}
    assert by_kind["missing_file"] == [2, 11] and by_kind["undecodable"] == [3, 4]
    assert by_kind["duplicate_id"] == [6] and by_kind["bad_labels"] == [7, 8]
    assert [e.id for e in report.examples] == ["ok"]

    code = main(["data", "validate", str(path), "--limit", "1"])
    out = capsys.readouterr().out
    assert code == 1
    assert out.splitlines()[0].endswith(
        "10 problems in 11 rows (missing_media: 1, missing_file: 2, undecodable: 2, "
        "empty_caption: 1, duplicate_id: 1, bad_labels: 2, bad_value: 1)"
    )
    assert "row 2 [gone]: video file not found" in out and "row 3 [cut]" in out and "row 4" not in out

    code = main(["data", "validate", str(path), "--json", "--no-decode"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and "undecodable" not in data["counts"] and data["counts"]["duplicate_id"] == 1

    with pytest.raises(AffectReasonError, match=r"run `affectreason data validate"):
        load_captions(path)


def test_jsonl_lists_bad_lines_and_audio_only_rows(data_dir, audio_wav, clip_av):
    path = data_dir / "captions.jsonl"
    lines = [
        json.dumps({"video": f"clips/{clip_av.name}", "emotions": ["happy", "calm"]}),
        "{not json",
        json.dumps(["a", "list"]),
        json.dumps({"audio": f"clips/{audio_wav.name}", "caption": "a steady hum", "emotions": [1]}),
        json.dumps({"audio": f"clips/{audio_wav.name}", "caption": "a steady hum", "transcript": "hello"}),
    ]
    path.write_text("\n".join(lines) + "\n\n")
    report = validate_captions(path)
    assert report.rows == 5
    assert report.counts() == {"bad_row": 2, "bad_labels": 1, "duplicate_id": 1}
    assert report.examples[0].emotions == ["happy", "calm"]


def test_folders_with_metadata_or_a_saved_dataset(data_dir, clip_av):
    import datasets

    folder = data_dir / "videofolder"
    folder.mkdir()
    shutil.copy(clip_av, folder / "x.mp4")
    _write_csv(folder / "metadata.csv", [("x.mp4", "happy")], header=("file_name", "emotions"))
    (example,) = validate_captions(folder).examples
    assert example.video == str((folder / "x.mp4").resolve()) and example.id == "x"

    saved = data_dir / "saved"
    datasets.Dataset.from_list(
        [{"video": "../videofolder/x.mp4", "caption": "smiling", "emotions": ["joy"]}]
    ).save_to_disk(str(saved))
    (example,) = validate_captions(saved).examples
    assert example.emotions == ["joy"] and example.video == str((folder / "x.mp4").resolve())


def test_unreadable_caption_files_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(AffectReasonError, match="caption file not found"):
        validate_captions(tmp_path / "nope.csv")
    other = tmp_path / "captions.txt"
    other.write_text("x")
    with pytest.raises(AffectReasonError, match="unsupported caption file type .txt"):
        validate_captions(other)
    empty = tmp_path / "empty.csv"
    empty.write_text("video,caption\n")
    assert main(["data", "validate", str(empty)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {empty}: no rows"


@pytest.mark.parametrize(
    ("value", "labels"),
    [
        ("happy, sad", ["happy", "sad"]),
        ("['happy', 'sad']", ["happy", "sad"]),
        ('["joy"]', ["joy"]),
        ("anger; fear", ["anger", "fear"]),
        (["surprise"], ["surprise"]),
        ("", []),
        (None, []),
    ],
)
def test_parse_emotions_reads_list_forms(value, labels):
    assert parse_emotions(value) == labels


@pytest.mark.parametrize(
    "value", ['["a"', "[1, 2]", "123", "{joy}", ["x", 3], 4.5, "happy sad angry surprised"]
)
def test_parse_emotions_rejects_malformed_lists(value):
    with pytest.raises(ValueError):
        parse_emotions(value)
