"""The cue phrase lexicon of `affectreason.verify`: phrases (regexes) of one modality, the measurements they
make claims about (`affectreason.evidence.REFERENCE`) with the levels that agree ("ok") or disagree ("bad"), and
examples for the sentence-embedding fallback."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    """A lexicon entry: phrases (regex) of one modality, the claims they make, examples for the fallback."""

    modality: str
    pattern: str
    claims: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]  # (measure, ok levels, bad levels)
    examples: tuple[str, ...]


HIGH, LOW, MEDIUM, NONE = ("high",), ("low",), ("medium",), ()
_LOUD = ("loudness", HIGH, LOW)
_QUIET = ("loudness", LOW, HIGH)

# Order matters: earlier entries claim their words first ("avoids eye contact" before "eye contact").
LEXICON: tuple[Entry, ...] = (
    Entry(
        "acoustic",
        r"^\s*(silent|silence|no sound)\s*$|(remains|stays|is|completely|entirely) silent|complete silence"
        r"|no (audible )?(speech|voice|sound)|says nothing|does not speak",
        (("speech", LOW, HIGH),),
        ("silent", "no speech", "says nothing"),
    ),
    Entry(
        "acoustic",
        r"loud(ly)?\b|shout\w*|yell\w*|scream\w*|raised voice|rais\w* (his|her|their) voice|booming|high volume",
        (_LOUD,),
        ("loud voice", "shouting", "yelling", "raised voice", "booming voice"),
    ),
    Entry(
        "acoustic",
        r"quiet(ly)?\b|soft(ly)?\b|whisper\w*|hushed|murmur\w*|mumbl\w*|barely audible|low volume|faint voice",
        (_QUIET,),
        ("quiet voice", "soft voice", "whispering", "hushed tone", "barely audible"),
    ),
    Entry(
        "acoustic",
        r"louder|quieter|get\w* (louder|quieter|softer)|(rising|varying|fluctuating|changing) volume"
        r"|volume (rises|drops|changes)",
        (("loudness_variation", HIGH, LOW),),
        ("voice gets louder", "fluctuating volume"),
    ),
    Entry(
        "acoustic",
        r"high[- ]pitch\w*|shrill|squeak\w*|squeal\w*|high voice|piercing",
        (("pitch", HIGH, LOW),),
        ("high-pitched voice", "shrill voice", "squeaky voice"),
    ),
    Entry(
        "acoustic",
        r"low[- ]pitch\w*|deep (voice|tone)|low (voice|tone)|gravelly|husky",
        (("pitch", LOW, HIGH),),
        ("low-pitched voice", "deep voice", "low voice"),
    ),
    Entry(
        "acoustic",
        r"monoton\w*|flat (voice|tone|intonation|delivery|affect)|lifeless voice|robotic",
        (("pitch_spread", LOW, HIGH),),
        ("monotone voice", "flat intonation", "monotonous delivery"),
    ),
    Entry(
        "acoustic",
        r"(varied|expressive|lively|animated|dynamic|sing-?song|melodic) (voice|intonation|tone|delivery|pitch)|sing-?song",
        (("pitch_spread", HIGH, LOW),),
        ("expressive intonation", "lively voice", "varied pitch"),
    ),
    Entry(
        "acoustic",
        r"trembl\w*|tremor|shak(y|ing|en) voice|quiver\w*|waver\w*|crack(s|ing|ed)?\b|tremulous|voice breaks",
        (("pitch_jitter", HIGH, LOW),),
        ("trembling voice", "shaky voice", "quivering voice", "voice cracks"),
    ),
    Entry(
        "acoustic",
        r"(steady|even|stable|controlled) (voice|tone|delivery)",
        (("pitch_jitter", LOW, HIGH),),
        ("steady voice", "controlled tone"),
    ),
    Entry(
        "acoustic",
        r"(speak|talk)\w* (very )?(fast|quickly|rapidly)|(fast|rapid|quick)[- ](paced|pace|speech|speaking|talking|"
        r"delivery|tempo|rate|words)|rapidly|hurried\w*|rushed|rapid-fire",
        (("pace", HIGH, LOW),),
        ("speaks fast", "rapid speech", "hurried delivery"),
    ),
    Entry(
        "acoustic",
        r"(speak|talk)\w* (very )?slowly|slow[- ](paced|pace|speech|speaking|talking|delivery|tempo|rate|words)|slowly"
        r"|drawn[- ]out|drawl\w*|sluggish|unhurried|measured pace",
        (("pace", LOW, HIGH),),
        ("speaks slowly", "slow speech", "drawn-out words"),
    ),
    Entry(
        "acoustic",
        r"paus\w*|hesita\w*|halting|stammer\w*|stutter\w*|silen(ce|ces|t)\b|long gaps",
        (("pauses", HIGH, LOW),),
        ("long pauses", "hesitant speech", "halting delivery"),
    ),
    Entry(
        "acoustic",
        r"fluent\w*|uninterrupted|continuous (speech|flow)|without pausing",
        (("pauses", LOW, HIGH),),
        ("fluent speech", "speaks without pausing"),
    ),
    Entry(
        "visual",
        r"no face|face (is )?(not visible|hidden|covered|out of frame)|off[- ]screen|back to the camera|covers (his|her|their) face",
        (("face", LOW, HIGH),),
        ("face not visible", "face hidden", "off-screen"),
    ),
    Entry(
        "visual",
        r"avoid\w* (eye contact|(the )?gaze|looking)|look\w* away|avert\w*|turn\w* (his|her|their) (head|face) away|head turned( away)?|glanc\w* (away|sideways)|no eye contact|in profile",
        (("looking_away", HIGH, LOW),),
        ("avoids eye contact", "looks away", "averted gaze", "head turned away"),
    ),
    Entry(
        "visual",
        r"(direct|steady) (eye contact|gaze)|eye contact|look\w* (directly |straight )?(at|into) the camera|fac\w* the camera",
        (("looking_away", LOW, HIGH),),
        ("direct eye contact", "looks at the camera", "faces the camera"),
    ),
    Entry(
        "visual",
        r"smil\w*|grin\w*|beam\w*|laugh\w*",
        (("smile", HIGH, LOW),),
        ("smiling", "broad smile", "grinning", "laughing"),
    ),
    Entry(
        "visual",
        r"frown\w*|scowl\w*|grimac\w*|pout\w*|furrowed|knit(ted)? brows?|downturned (mouth|lips)|pursed lips|tight(ened)? lips|clenched jaw|straight face|expressionless|blank (stare|expression)",
        (("smile", NONE, HIGH),),
        ("frowning", "scowl", "furrowed brow", "grimace", "expressionless face"),
    ),
    Entry(
        "visual",
        r"eyes (are |remain |stay )?(closed|shut)|clos\w* (his|her|their) eyes|shut eyes",
        (("eyes_open", LOW, HIGH),),
        ("eyes closed", "closes her eyes"),
    ),
    Entry(
        "visual",
        r"wide[- ]eyed|eyes (are )?(wide|open)|wide[- ]open eyes|wide eyes",
        (("eyes_open", HIGH, LOW),),
        ("wide-eyed", "eyes wide open"),
    ),
    Entry(
        "visual",
        r"close[- ]up|face fills the frame",
        (("face_size", HIGH, LOW),),
        ("close-up of the face",),
    ),
    Entry(
        "visual",
        r"wide shot|distant figure|far from the camera|small in (the )?frame",
        (("face_size", LOW, HIGH),),
        ("wide shot", "far from the camera"),
    ),
    Entry(
        "visual",
        r"fidget\w*|restless\w*|gesticulat\w*|gestur\w*|wav\w* (his|her|their) (arms|hands)|rapid movements?|moves? (a lot|quickly|around)|pacing|jumping|agitated movements?",
        (("motion", HIGH, LOW),),
        ("fidgeting", "restless movement", "gesturing", "rapid movements"),
    ),
    Entry(
        "visual",
        r"(sits|stands|stays|remains|holds|keeps|sitting|standing) still|motionless|unmoving|frozen in place|does not move|(rigid|static|stiff) posture",
        (("motion", LOW, HIGH),),
        ("sits still", "motionless", "static posture"),
    ),
    Entry(
        "visual",
        r"dark (room|scene|lighting|background|setting)|dim(ly)?[- ]lit|dim lighting|low light|poorly lit|in (the )?dark(ness)?",
        (("brightness", LOW, HIGH),),
        ("dark room", "dimly lit scene", "low light"),
    ),
    Entry(
        "visual",
        r"bright(ly)?[- ]lit|bright (light|lighting|scene|room|background|setting)|well[- ]lit|sunlit|sunny",
        (("brightness", HIGH, LOW),),
        ("brightly lit room", "bright lighting", "well-lit scene"),
    ),
)
COMPILED = [(entry, re.compile(rf"\b(?:{entry.pattern})", re.I)) for entry in LEXICON]
# Every voice claim implies audible speech, and every face-detail claim a face: their absence contradicts.
IMPLIED = {
    "acoustic": ("speech", NONE, LOW),
    "smile": ("face", NONE, LOW),
    "eyes_open": ("face", NONE, LOW),
}
