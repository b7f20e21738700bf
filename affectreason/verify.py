"""Cue verification: map a rationale's visual and acoustic cue phrases to measurable claims and check them.

A cue phrase is matched against a small phrase lexicon (`affectreason.cue_lexicon.LEXICON`); each entry names the measurement it
speaks about (`affectreason.evidence.REFERENCE`) and which of its levels agree ("ok") or disagree ("bad"). An
entry with no "ok" levels can only be contradicted: a smile detected contradicts "frowning", but no smile
detected does not prove a frown. A negation just before the phrase ("no smile", "not shouting") swaps the two.
Phrases the lexicon does not know fall back to the nearest lexicon example by sentence embedding (the project's
shared embedder; loaded, and torch imported, only then). Cues that make no measurable claim are "unverifiable".

Verdicts: a claim is supported when the measured level is "ok", contradicted when it is "bad", inconclusive
otherwise (a reading in the neutral band, or nothing to measure). A cue is contradicted when any of its claims
is, supported when at least one is and none is contradicted, else unverifiable. Faithfulness is
supported / (supported + contradicted), None when no cue could be checked. Lexical cues are not checked.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectreason.cue_lexicon import COMPILED, IMPLIED, LEXICON, Entry
from affectreason.errors import MediaError
from affectreason.evidence import Measurement, clip_evidence
from affectreason.media import Clip
from affectreason.rationale import Rationale

EMBEDDING_THRESHOLD = 0.72  # cosine similarity to the nearest lexicon example for the fallback to count
_NEGATION_RE = re.compile(
    r"\b(no|not|never|without|nor|neither|lacks?|lacking|absence of|few|little|minimal|hardly any|\w+n't)\b"
    r"(\W+\w+){0,2}\W*$"
)
_FALLBACK_NEGATION_RE = re.compile(r"\b(no|not|never|without|nor|neither|lacks?|lacking|\w+n't)\b")


@dataclass
class CueVerdict:
    """One cue phrase, its verdict and the claims (with the measurements) behind it."""

    modality: str
    cue: str
    verdict: str
    claims: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Verification:
    """Per-cue verdicts of one rationale and its faithfulness score."""

    cues: list[CueVerdict]

    def count(self, verdict: str) -> int:
        return sum(c.verdict == verdict for c in self.cues)

    @property
    def faithfulness(self) -> float | None:
        checked = self.count("supported") + self.count("contradicted")
        return self.count("supported") / checked if checked else None

    @property
    def contradicted(self) -> list[str]:
        return [c.cue for c in self.cues if c.verdict == "contradicted"]

    def to_dict(self) -> dict[str, Any]:
        faith = self.faithfulness
        return {
            "faithfulness": None if faith is None else round(faith, 4),
            "supported": self.count("supported"),
            "contradicted": self.count("contradicted"),
            "unverifiable": self.count("unverifiable"),
            "contradicted_cues": self.contradicted,
            "cues": [c.__dict__ for c in self.cues],
        }


def _negated(text: str, start: int) -> bool:
    return bool(_NEGATION_RE.search(text[max(0, start - 40) : start]))


def _lexicon_claims(modality: str, cue: str) -> list[tuple[Entry, str, bool]]:
    """(entry, matched phrase, negated) for every lexicon phrase in the cue; a matched span is not reused."""
    text, found = cue, []
    for entry, pattern in COMPILED:
        if entry.modality != modality:
            continue
        matches = list(pattern.finditer(text))
        found += dict.fromkeys((entry, m.group(0).lower(), _negated(text, m.start())) for m in matches)
        if matches:  # blank the matched spans so that later entries do not claim the same words
            text = pattern.sub(lambda m: " " * len(m.group(0)), text)
    return found


def _fallback_claims(modality: str, cue: str) -> list[tuple[Entry, str, bool]]:
    """The lexicon entry whose example is nearest to the cue by sentence embedding, above the threshold."""
    if _FALLBACK_NEGATION_RE.search(cue):
        return []  # embeddings do not see negation: "no smile" sits next to "smiling"
    from affectreason.embedding import get_embedder

    entries = [e for e in LEXICON if e.modality == modality]
    examples = [(e, x) for e in entries for x in e.examples]
    embedder = get_embedder()
    sims = embedder.encode([x for _, x in examples]) @ embedder.encode([cue])[0]
    best = int(sims.argmax())
    if sims[best] < EMBEDDING_THRESHOLD:
        return []
    return [(examples[best][0], f"~{examples[best][1]} ({sims[best]:.2f})", False)]


def _judge(measure: str, ok: tuple, bad: tuple, evidence: dict[str, Measurement]) -> tuple[str, dict]:
    m = evidence.get(measure)
    level = m.level if m is not None else None
    verdict = "supported" if level in ok else "contradicted" if level in bad else "inconclusive"
    detail = {"measure": measure, "expects": list(ok), "contradicted_by": list(bad), "found": level}
    if m is not None:
        detail.update(value=m.value, unit=m.unit, range=[m.low, m.high], evidence=m.describe())
    return verdict, detail


def verify_cue(
    modality: str, cue: str, evidence: dict[str, Measurement], semantic: bool = True
) -> CueVerdict:
    """The verdict of one cue phrase against a clip's measurements."""
    matches = _lexicon_claims(modality, cue)
    via = "lexicon"
    if not matches and semantic:
        matches, via = _fallback_claims(modality, cue), "embedding"
    claims: list[dict[str, Any]] = []
    for entry, phrase, negated in matches:
        for measure, ok, bad in entry.claims:
            if negated:
                ok, bad = bad, ok
            implied = IMPLIED.get(modality if modality == "acoustic" else measure)
            if negated or (implied and implied[0] == measure):
                implied = None  # "no shouting" implies no speech; "silent" is itself the speech claim
            for m, o, b, how in ((measure, ok, bad, via), *([(*implied, "implied")] if implied else [])):
                verdict, detail = _judge(m, o, b, evidence)
                if how == "implied" and verdict != "contradicted":
                    continue
                claims.append({"phrase": phrase, "via": how, "verdict": verdict, **detail})
    verdicts = {c["verdict"] for c in claims}
    verdict = (
        "contradicted"
        if "contradicted" in verdicts
        else "supported"
        if "supported" in verdicts
        else "unverifiable"
    )
    return CueVerdict(modality, cue, verdict, claims)


def verify_rationale(
    rationale: Rationale, evidence: dict[str, Measurement], semantic: bool = True
) -> Verification:
    """Verdicts for every visual and acoustic cue of a rationale."""
    cues = [
        verify_cue(modality, cue, evidence, semantic)
        for modality in ("visual", "acoustic")
        for cue in rationale.cues(modality)
    ]
    return Verification(cues)


_MARK = {"supported": "+", "contradicted": "x", "unverifiable": "?"}


def verification_lines(verification: dict[str, Any]) -> list[str]:
    """The text view of a verification dict (as `Verification.to_dict` writes it)."""
    faith = verification.get("faithfulness")
    head = "n/a" if faith is None else f"{faith:.2f}"
    lines = [
        f"  cue check  faithfulness {head}  ({verification['supported']} supported, "
        f"{verification['contradicted']} contradicted, {verification['unverifiable']} unverifiable)"
    ]
    for cue in verification["cues"]:
        checked = [c for c in cue["claims"] if c["verdict"] != "inconclusive" and "evidence" in c]
        because = "; ".join(dict.fromkeys(c["evidence"] for c in checked)) or "no measurable claim"
        lines.append(f"    {_MARK[cue['verdict']]} {cue['modality']:<8} {cue['cue']}  <- {because}")
    return lines


def _cue_list(record: dict[str, Any], key: str) -> list[str]:
    value = record.get(key) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"'{key}' is not a list of strings")
    return value


class EvidenceCache:
    """Measurements per source file, each file decoded and measured once."""

    def __init__(self, frames: int = 8, base: Path | None = None):
        self.frames, self.base, self.cache = frames, base, {}

    def resolve(self, source: str) -> Path:
        """A record's `source` as written, else relative to the predictions file's folder."""
        path = Path(source)
        if not path.exists() and not path.is_absolute() and self.base is not None:
            path = self.base / source
        return path

    def get(self, source: str) -> dict[str, Measurement]:
        from affectreason.evidence import evidence_for_path

        if source not in self.cache:
            path = self.resolve(source)
            if not path.is_file():
                raise FileNotFoundError(f"source not found: '{source}'")
            self.cache[source] = evidence_for_path(str(path), frames=self.frames)
        return self.cache[source]


def verify_record(record: dict[str, Any], evidence: EvidenceCache, semantic: bool = True) -> dict[str, Any]:
    """The verification dict of one prediction record (as `describe` writes it, with its `source`)."""
    source = record.get("source")
    if not isinstance(source, str) or not source:
        raise ValueError("record has no 'source' path")
    rationale = Rationale(
        visual_cues=_cue_list(record, "visual_cues"), acoustic_cues=_cue_list(record, "acoustic_cues")
    )
    return verify_rationale(rationale, evidence.get(source), semantic).to_dict()


def verify_clip_record(record: dict[str, Any], clip: Clip, semantic: bool = True) -> dict[str, Any]:
    """The verification dict of a record whose clip is already decoded (as `bench` has it)."""
    rationale = Rationale(
        visual_cues=_cue_list(record, "visual_cues"), acoustic_cues=_cue_list(record, "acoustic_cues")
    )
    return verify_rationale(rationale, clip_evidence(clip), semantic).to_dict()


def read_predictions(path: Path) -> list[dict[str, Any]]:
    """Prediction records from a JSONL file (or the JSON list `describe --out x.json` writes)."""
    from affectreason.errors import AffectReasonError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AffectReasonError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if text.lstrip().startswith("["):
        try:
            records = json.loads(text)
        except (ValueError, RecursionError):
            raise AffectReasonError(f"{path} is not valid JSON") from None
    else:
        records = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except (ValueError, RecursionError):
                raise AffectReasonError(f"{path} line {number} is not valid JSON") from None
    if not all(isinstance(r, dict) for r in records):
        raise AffectReasonError(f"{path}: every record must be a JSON object")
    return records


def verify_file(path: Path, semantic: bool = True, frames: int = 8) -> dict[str, Any]:
    """Verify every record of a predictions file; per-record errors are kept, not raised."""
    evidence = EvidenceCache(frames=frames, base=path.parent)
    results = []
    for record in read_predictions(path):
        row = {"id": record.get("id"), "source": record.get("source")}
        try:
            row["verification"] = verify_record(record, evidence, semantic)
        except (ValueError, OSError, MediaError) as exc:
            row["error"] = str(exc)
        results.append(row)
    scores = [r["verification"]["faithfulness"] for r in results if "verification" in r]
    scores = [s for s in scores if s is not None]
    summary = {
        "records": len(results),
        "failed": sum("error" in r for r in results),
        "checked": len(scores),
        "faithfulness": round(sum(scores) / len(scores), 4) if scores else None,
        "contradicted": sum(r["verification"]["contradicted"] for r in results if "verification" in r),
    }
    return {"summary": summary, "records": results}
