"""The shared multimodal collator on a tiny omni thinker: decoded media, audio-in-video, transcript, masked labels."""

import shutil

import pytest

from affectreason.backbones.batching import IGNORE_INDEX
from affectreason.errors import AffectReasonError
from affectreason.train.collator import MultimodalCollator, load_row_clip
from affectreason.train.sections import DataSection

TARGET = "<think>\nReasoning: she laughs\n</think>\n<answer>\nEmotions: happy\n</answer>"


@pytest.fixture
def omni(loaded_backbones):
    return loaded_backbones["qwen2_5_omni"]


def _row(video=None, audio=None, subtitle=None, target=TARGET):
    return {"id": "x", "video": video, "audio": audio, "subtitle": subtitle, "target": target}


def test_training_batch_has_audio_in_video_transcript_and_labels_on_the_response(omni, clip_av, clip_silent):
    data = DataSection(frames=4)
    collator = MultimodalCollator(omni, data)
    rows = [_row(str(clip_av), subtitle="what a day"), _row(str(clip_silent), target="<answer>sad</answer>")]
    batch = collator(rows)
    assert batch["use_audio_in_video"] is True
    assert {"input_ids", "attention_mask", "labels", "pixel_values_videos", "input_features"} <= set(batch)
    tokenizer = omni.tokenizer
    for row, labels in zip(rows, batch["labels"]):
        kept = labels[labels != IGNORE_INDEX]
        assert tokenizer.decode(kept) == row["target"] + tokenizer.eos_token
        assert (labels == IGNORE_INDEX).sum() > 0  # the prompt and media tokens are masked
    assert 'Transcript: "what a day"' in tokenizer.decode(batch["input_ids"][0])
    assert "what a day" not in tokenizer.decode(batch["input_ids"][1])


def test_prompt_only_batches_for_generation(omni, clip_av):
    collator = MultimodalCollator(omni, DataSection(frames=2), response_key=None)
    batch = collator([_row(str(clip_av)), _row(str(clip_av))])
    assert "labels" not in batch
    assert (batch["attention_mask"][:, -1] == 1).all()  # left-padded for generation


def test_separate_audio_file_and_audio_only_rows(tmp_path, clip_silent, audio_wav, clip_av):
    data = DataSection(frames=3)
    clip = load_row_clip(_row(str(clip_silent), audio=str(audio_wav)), data)
    assert clip.has_video and clip.has_audio and len(clip.frames) == 3
    audio_only = load_row_clip(_row(audio=str(audio_wav), subtitle="hello"), data)
    assert not audio_only.has_video and audio_only.has_audio and audio_only.transcript == "hello"
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nfrom a file\n")
    assert load_row_clip(_row(str(clip_av), subtitle=str(srt)), data).transcript == "from a file"
    broken = tmp_path / "broken.mp4"
    shutil.copy(srt, broken)
    with pytest.raises(AffectReasonError, match="cannot decode"):
        load_row_clip(_row(str(broken)), data)


def test_max_length_cuts_the_response_tail_but_never_media_tokens(omni, clip_av):
    data = DataSection(frames=2)
    full = MultimodalCollator(omni, data)([_row(str(clip_av))])
    length = full["input_ids"].shape[1]
    cut = MultimodalCollator(omni, data, max_length=length - 3)([_row(str(clip_av))])
    assert cut["input_ids"].shape[1] == length - 3 == cut["labels"].shape[1]
    with pytest.raises(AffectReasonError, match="cuts into the media tokens"):
        MultimodalCollator(omni, data, max_length=8)([_row(str(clip_av))])
