"""Metrics, pure functions without torch over label and cue lists: per-sample forms for rewards (floats in [0, 1],
never NaN) and corpus forms for benchmarks, sharing code. Reading record files and picking their fields is
`affectreason.scoring`'s job (the `score` command's library), which calls these. Sentence embeddings (cue
matching, the taxonomy's semantic fallback) come from the shared numpy MiniLM (`affectreason.embedding`),
loaded only when needed.

Per sample: `ew_f1`, `ew_precision_recall`, `hit`, `valence_agreement`, `cue_f1`.
Corpus: `score_ov`, `score_discrete`, `score_sentiment`, `score_emer`, `score_cues`, `calibration`,
`score_choice` / `score_multilabel` (closed label sets), `score_reason`; judged: `cot_scores`, `laughter_scores`.
"""

from __future__ import annotations

from affectreason.metrics.calibration import calibration
from affectreason.metrics.cues import (
    MATCH_THRESHOLD,
    cue_f1,
    cue_phrases,
    from_emocue,
    match_cues,
    score_cues,
)
from affectreason.metrics.emer import score_emer, score_reason
from affectreason.metrics.judged import cot_scores, laughter_scores, parse_step_scores
from affectreason.metrics.ov import DEFAULT_PROTOCOL_FIXES, PROTOCOLS, score_discrete, score_ov
from affectreason.metrics.recognition import score_choice, score_joint, score_multilabel
from affectreason.metrics.sentiment import score_sentiment, weighted_f1
from affectreason.metrics.sets import ew_f1, ew_precision_recall, f_score, hit, valence_agreement

__all__ = [
    "DEFAULT_PROTOCOL_FIXES",
    "MATCH_THRESHOLD",
    "PROTOCOLS",
    "calibration",
    "cot_scores",
    "cue_f1",
    "cue_phrases",
    "ew_f1",
    "ew_precision_recall",
    "f_score",
    "from_emocue",
    "hit",
    "laughter_scores",
    "match_cues",
    "parse_step_scores",
    "score_choice",
    "score_cues",
    "score_discrete",
    "score_emer",
    "score_joint",
    "score_multilabel",
    "score_ov",
    "score_reason",
    "score_sentiment",
    "valence_agreement",
    "weighted_f1",
]
