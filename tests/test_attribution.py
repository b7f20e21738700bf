"""Attribution summary, variant planning, corpus view and renderings (pure: real score library, no model)."""

from __future__ import annotations

import re
from xml.etree import ElementTree

import numpy as np

from affectreason.attribution import (
    VARIANTS,
    clip_modalities,
    corpus_attribution,
    plan_variants,
    summarise_attribution,
    write_attribution_html,
)
from affectreason.attribution_report import attribution_lines, corpus_html, corpus_markdown, svg_bars
from affectreason.media import Clip
from affectreason.metrics import hit
from affectreason.rationale import Rationale

ALL = frozenset({"video", "audio", "text"})


def _clip(video: bool = True, audio: bool = True, transcript: str | None = "I passed the exam") -> Clip:
    return Clip(
        frames=np.zeros((2, 8, 8, 3), np.uint8) if video else None,
        frame_times=np.array([0.0, 0.5]) if video else np.zeros(0),
        audio=np.zeros(1600, np.float32) if audio else None,
        duration=1.0,
        source="/data/x.mp4",
        transcript=transcript,
    )


def _full() -> Rationale:
    return Rationale(
        emotions=["happy"],
        visual_cues=["smiling"],
        acoustic_cues=["bright voice"],
        lexical_cues=["says it went great"],
        parse_ok=True,
    )


def test_plan_runs_every_variant_the_clip_can_have():
    run, skipped = plan_variants(_clip())
    assert run == {name: frozenset({m}) for name, m in VARIANTS.items()}
    assert skipped == {}


def test_plan_skips_missing_modalities_and_says_why():
    run, skipped = plan_variants(_clip(transcript=None))
    assert set(run) == {"video_only", "audio_only"}
    assert skipped == {"text_only": "no transcript"}

    run, skipped = plan_variants(_clip(audio=False, transcript="  "))
    assert run == {}
    assert skipped["audio_only"] == "no audio track"
    assert skipped["text_only"] == "no transcript"
    assert "only modality" in skipped["video_only"]

    run, skipped = plan_variants(_clip(video=False))
    assert set(run) == {"audio_only", "text_only"}
    assert skipped == {"video_only": "no video frames"}
    assert clip_modalities(_clip(video=False)) == {"audio", "text"}


def test_summary_dominant_conflict_and_decorative_cues():
    variants = {
        "video_only": Rationale(emotions=["joyful"]),
        "audio_only": Rationale(emotions=["sad"]),
        "text_only": Rationale(emotions=["happy", "angry"]),
    }
    summary = summarise_attribution(_full(), variants, {}, ALL)
    assert summary["agreement"]["video"] == {"family_f1": 1.0, "valence_agree": 1.0}
    assert summary["agreement"]["audio"]["family_f1"] == 0.0
    assert summary["agreement"]["audio"]["valence_agree"] < 1.0
    assert 0.0 < summary["agreement"]["text"]["family_f1"] < 1.0
    assert summary["dominant"] == "video"
    assert summary["conflict"] is True
    # video alone gives the same answer: the audio and the transcript were not needed for it
    assert summary["decorative_cues"] == {"acoustic": ["bright voice"], "lexical": ["says it went great"]}
    assert summary["decorative_why"]["acoustic"] == "the video-only run gives the same answer without them"
    assert summary["modalities"] == ["audio", "text", "video"]
    assert summary["skipped"] == {}


def test_summary_tie_has_no_dominant_and_no_conflict():
    variants = {"video_only": Rationale(emotions=["happy"]), "audio_only": Rationale(emotions=["joyful"])}
    summary = summarise_attribution(
        _full(), variants, {"text_only": "no transcript"}, frozenset({"video", "audio"})
    )
    assert summary["dominant"] is None
    assert summary["conflict"] is False
    assert summary["scores"] == {"video": 1.0, "audio": 1.0}
    assert summary["skipped"] == {"text_only": "no transcript"}
    lines = "\n".join(attribution_lines({"attribution": summary, "variants": {}}))
    assert "tie: video, audio" in lines
    assert "text only   skipped: no transcript" in lines


def test_summary_single_modality_clip_and_ungrounded_cues():
    skipped = plan_variants(_clip(audio=False, transcript=None))[1]
    summary = summarise_attribution(_full(), {}, skipped, frozenset({"video"}))
    assert summary["dominant"] == "video"
    assert summary["conflict"] is None
    assert summary["agreement"] == {}
    # acoustic and lexical cues cannot come from a silent clip without transcript
    assert set(summary["decorative_cues"]) == {"acoustic", "lexical"}
    assert summary["decorative_why"]["acoustic"] == "the clip has no audio"


def test_summary_of_an_unparsed_full_answer_is_well_formed():
    variants = {"video_only": Rationale(), "audio_only": Rationale(emotions=["sad"])}
    summary = summarise_attribution(Rationale(raw="gibberish"), variants, {}, frozenset({"video", "audio"}))
    assert summary["dominant"] is None
    assert summary["conflict"] is None
    assert summary["decorative_cues"] == {}
    for agreement in summary["agreement"].values():
        assert set(agreement) == {"family_f1", "valence_agree"}
        assert all(0.0 <= v <= 1.0 for v in agreement.values())


def _record(i: int, dataset: str, full: list[str], video: list[str], audio: list[str], ref: str) -> dict:
    variants = {"video_only": Rationale(emotions=video), "audio_only": Rationale(emotions=audio)}
    full_r = Rationale(emotions=full)
    return {
        "dataset": dataset,
        "id": f"{dataset}-{i}",
        "reference": ref,
        "emotions": full,
        "variants": {n: {**r.to_dict(), "modalities": [VARIANTS[n]]} for n, r in variants.items()},
        "attribution": summarise_attribution(
            full_r, variants, {"text_only": "no transcript"}, frozenset({"video", "audio"})
        ),
    }


def _hit_rate(dataset: str, records: list[dict]) -> float:
    return sum(hit(r["emotions"], [r["reference"]]) for r in records) / len(records)


def test_corpus_view_per_dataset_with_the_benchmarks_scorer():
    records = [
        _record(0, "mer", ["happy"], ["sad"], ["happy"], "happy"),
        _record(1, "mer", ["angry"], ["angry"], ["angry"], "angry"),
        _record(2, "mer", ["sad"], ["happy"], ["sad"], "sad"),
        _record(3, "meld", ["happy"], ["happy"], ["sad"], "sad"),
        {"dataset": "meld", "id": "no-attribution", "emotions": ["sad"]},
    ]
    view = corpus_attribution(records, score=_hit_rate)
    assert set(view) == {"mer", "meld"}
    mer = view["mer"]
    assert mer["n"] == 3
    assert mer["dominant"] == {"video": 0.0, "audio": round(2 / 3, 4), "text": 0.0, "none": round(1 / 3, 4)}
    assert mer["conflict_rate"] == round(2 / 3, 4) and mer["conflict_n"] == 3
    assert mer["accuracy"]["full"] == {"score": 1.0, "n": 3}
    assert mer["accuracy"]["audio_only"]["score"] == 1.0
    assert mer["accuracy"]["audio_only"]["relative"] == 1.0
    assert abs(mer["accuracy"]["video_only"]["score"] - 1 / 3) < 1e-9
    assert "text_only" not in mer["accuracy"]
    assert view["meld"]["n"] == 1 and view["meld"]["dominant"]["video"] == 1.0
    assert view["meld"]["accuracy"]["full"]["score"] == 0.0
    assert view["meld"]["accuracy"]["audio_only"]["relative"] is None

    markdown = corpus_markdown(view)
    assert "## Modality attribution" in markdown
    table = [line for line in markdown.splitlines() if line.startswith("| mer ")]
    assert table and "100% of full" in table[0]
    fragment = corpus_html(view)
    ElementTree.fromstring(fragment)  # well-formed markup
    assert fragment.count("<svg") == 2


def test_corpus_view_without_scorer_or_records():
    assert corpus_attribution([]) == {}
    assert corpus_markdown({}) == "" and corpus_html({}) == ""
    view = corpus_attribution([_record(0, "mer", ["happy"], ["happy"], ["sad"], "happy")])
    assert "accuracy" not in view["mer"]
    assert corpus_html(view).count("<svg") == 1


def test_svg_bars_scale_and_skip_missing_values():
    svg = svg_bars(["a", "b"], {"x": [0.5, None], "y": [1.0, 0.0]}, title="t<&>")
    root = ElementTree.fromstring(svg)
    bars = [
        e
        for e in root.iter("{http://www.w3.org/2000/svg}rect")
        if e.find("{http://www.w3.org/2000/svg}title") is not None
    ]
    assert len(bars) == 3
    heights = sorted(float(b.get("height")) for b in bars)
    assert heights[0] == 0.0 and abs(heights[2] - 2 * heights[1]) < 0.2


def test_clip_page_is_self_contained(tmp_path):
    variants = {"video_only": Rationale(emotions=["joyful"]), "audio_only": Rationale(emotions=["sad"])}
    record = {
        "id": "a/b c",
        "source": "x.mp4",
        **_full().to_dict(),
        "variants": {n: {**r.to_dict(), "modalities": [VARIANTS[n]]} for n, r in variants.items()},
        "attribution": summarise_attribution(
            _full(), variants, {"text_only": "no transcript"}, frozenset({"video", "audio"})
        ),
    }
    path = write_attribution_html(record, tmp_path / "pages")
    assert path.name == "a_b_c.attribution.html"
    page = path.read_text()
    assert "<svg" in page and "Dominant modality" in page and "video" in page
    assert not re.search(r"(src|href)=\"https?://", page)
    assert "text only skipped: no transcript" in page
