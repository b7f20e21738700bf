"""`describe --attribution` with tiny random backbones on real media files: the API and the CLI."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest

from affectreason.attribution import RUNS_PER_CLIP, attribute_clips
from affectreason.cli import main
from affectreason.describe import DescribeOptions, describe_clips
from affectreason.engines import create_engine
from affectreason.media import load_clip
from affectreason.request import ALL_MODALITIES

OPTIONS = DescribeOptions(max_new_tokens=8, frames=4)
SAY = "I really did not expect that."
FAST = ["--max-new-tokens", "8", "--frames", "4"]


class Recording:
    """A real engine, with each `generate` call's requests recorded."""

    def __init__(self, engine):
        self.engine, self.calls = engine, []
        self.name, self.model_id = engine.name, engine.model_id
        self.backbone = engine.backbone

    def generate(self, requests, sampling):
        self.calls.append(list(requests))
        return self.engine.generate(requests, sampling)


@pytest.fixture(scope="module")
def omni(tiny_qwen2_5_omni):
    return create_engine("hf", model=str(tiny_qwen2_5_omni), batch_size=4 * RUNS_PER_CLIP)


@pytest.fixture(scope="module")
def clips(clip_av, clip_silent, audio_wav):
    """A talking clip with a transcript, a silent clip without one, an audio file with one."""
    return [
        load_clip(clip_av, frames=4, transcript=SAY),
        load_clip(clip_silent, frames=4),
        load_clip(audio_wav, transcript=SAY),
    ]


@pytest.fixture(scope="module")
def attributed(omni, clips):
    engine = Recording(omni)
    return engine, attribute_clips(clips, engine, OPTIONS)


@contextmanager
def tower_calls(backbone):
    counts = {name: 0 for name in backbone.tower_modules()}
    hooks = [
        module.register_forward_hook(lambda *_, name=name: counts.__setitem__(name, counts[name] + 1))
        for name, module in backbone.tower_modules().items()
    ]
    try:
        yield counts
    finally:
        for hook in hooks:
            hook.remove()


def test_all_variants_go_through_one_engine_call(attributed):
    engine, records = attributed
    assert len(engine.calls) == 1
    by_clip: dict[str, list[frozenset]] = {}
    for request in engine.calls[0]:
        by_clip.setdefault(request.clip.id, []).append(request.modalities)
    assert sorted(by_clip["av"], key=sorted) == sorted(
        [ALL_MODALITIES, {"video"}, {"audio"}, {"text"}], key=sorted
    )
    assert by_clip["silent"] == [ALL_MODALITIES]
    assert sorted(by_clip["tone"], key=sorted) == sorted([ALL_MODALITIES, {"audio"}, {"text"}], key=sorted)
    assert [r["id"] for r in records] == ["av", "silent", "tone"]


def test_clips_without_a_modality_skip_its_variant_and_say_so(attributed):
    av, silent, tone = attributed[1]
    assert set(av["variants"]) == {"video_only", "audio_only", "text_only"}
    assert av["attribution"]["skipped"] == {}
    assert silent["variants"] == {}
    assert silent["attribution"]["skipped"]["audio_only"] == "no audio track"
    assert silent["attribution"]["skipped"]["text_only"] == "no transcript"
    assert silent["attribution"]["dominant"] == "video"
    assert set(tone["variants"]) == {"audio_only", "text_only"}
    assert tone["attribution"]["skipped"] == {"video_only": "no video frames"}


def test_summary_fields_are_always_present_and_well_formed(attributed):
    for record in attributed[1]:
        summary = record["attribution"]
        assert set(summary) == {
            "modalities",
            "agreement",
            "scores",
            "dominant",
            "conflict",
            "decorative_cues",
            "decorative_why",
            "skipped",
        }
        ran = {name.removesuffix("_only") for name in record["variants"]}
        assert set(summary["agreement"]) == set(summary["scores"]) == ran
        for agreement in summary["agreement"].values():
            assert set(agreement) == {"family_f1", "valence_agree"}
            assert all(0.0 <= v <= 1.0 for v in agreement.values())
        assert summary["dominant"] in {None, *summary["modalities"]}
        assert summary["conflict"] in {None, True, False}
        assert set(summary["decorative_cues"]) == set(summary["decorative_why"])
        for name, variant in record["variants"].items():
            assert variant["modalities"] == [name.removesuffix("_only")]
            assert isinstance(variant["raw"], str) and isinstance(variant["parse_ok"], bool)
            assert isinstance(variant["emotions"], list) and len(variant["families"]) == len(
                variant["emotions"]
            )
        assert json.loads(json.dumps(record)) == record


def test_each_variant_equals_describing_with_only_that_modality(attributed, omni, clips):
    """The full record and every ablation are exactly what plain describe gives with those modalities."""
    records = attributed[1]
    (plain,) = describe_clips([clips[0]], omni, OPTIONS)
    assert records[0]["raw"] == plain["raw"]
    for modality in ("video", "audio"):
        name = f"{modality}_only"
        (alone,) = describe_clips([clips[0]], omni, OPTIONS, modalities=frozenset({modality}))
        assert records[0]["variants"][name]["raw"] == alone["raw"]


@pytest.mark.parametrize("fixture", ["tiny_qwen2_5_omni", "tiny_qwen_vl"])
def test_ablations_reach_only_their_towers(request, fixture, clip_av):
    engine = Recording(create_engine("hf", model=str(request.getfixturevalue(fixture))))
    clip = load_clip(clip_av, frames=4, transcript=SAY)
    attribute_clips([clip], engine, OPTIONS)
    backbone = engine.backbone
    calls = {}
    for req in engine.calls[0]:
        with tower_calls(backbone) as counts:
            backbone.model(**backbone.to_model(backbone.build_inputs([req])), **backbone.generation_kwargs())
        calls["+".join(sorted(req.modalities))] = dict(counts)
    assert calls["video"]["vision"] > 0
    assert calls["audio"]["vision"] == 0 and calls["text"]["vision"] == 0
    assert calls["audio+text+video"]["vision"] > 0
    if "audio" in calls["video"]:  # the omni family has an audio tower; the others textualise audio
        assert calls["video"]["audio"] == 0 and calls["text"]["audio"] == 0
        assert calls["audio"]["audio"] > 0 and calls["audio+text+video"]["audio"] > 0


def test_greedy_attribution_is_deterministic(omni, clips, attributed):
    again = attribute_clips(clips, omni, OPTIONS)
    assert json.dumps(again, sort_keys=True) == json.dumps(attributed[1], sort_keys=True)


def test_cli_json_text_and_html(capsys, tmp_path, tiny_qwen2_5_omni, clip_av):
    model = ["--model", str(tiny_qwen2_5_omni)]
    pages = tmp_path / "pages"
    code = main(["describe", str(clip_av), *model, "--attribution", "--subtitle", SAY, "--format", "json",
                 "--html", str(pages), *FAST])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    record = json.loads(out)
    assert set(record["variants"]) == {"video_only", "audio_only", "text_only"}
    assert record["attribution"]["modalities"] == ["audio", "text", "video"]
    page = (pages / "av.attribution.html").read_text()
    assert "<svg" in page and "Dominant modality" in page

    code = main(["describe", str(clip_av), *model, "--attribution", *FAST])
    out = capsys.readouterr().out
    assert code == 0
    assert "attribution  dominant:" in out
    assert "video only" in out and "audio only" in out
    assert "text only   skipped: no transcript" in out


def test_attribution_with_segment_is_refused_in_one_line(capsys, tiny_qwen2_5_omni, clip_av):
    code = main(
        ["describe", str(clip_av), "--model", str(tiny_qwen2_5_omni), "--attribution", "--segment", "1"]
    )
    err = capsys.readouterr().err
    assert code != 0 and err.startswith("error: --attribution works on whole clips") and err.count("\n") == 1
