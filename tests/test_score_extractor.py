"""`score --extractor-endpoint`: free-text predictions labelled by an LLM behind a real OpenAI-compatible server."""

import json

import pytest

from affectreason.cli import main
from affectreason.engines import create_engine
from affectreason.llm_labels import llm_extractor
from affectreason.scoring import score_files
from affectreason.serve.server import BackgroundServer, ServeOptions, build_app


@pytest.fixture(scope="module")
def llm_server(tiny_qwen2_5_omni):
    engine = create_engine("hf", model=str(tiny_qwen2_5_omni))
    with BackgroundServer(build_app(engine, ServeOptions(served_model_name="judge"))) as server:
        yield server


@pytest.fixture
def files(tmp_path):
    ref = tmp_path / "ref.csv"
    ref.write_text('name,openset\na,"[angry]"\nb,"[sad, tired]"\n')
    pred = tmp_path / "pred.jsonl"
    rows = [
        {"id": "a", "text": "She is furious and shouts."},
        {"id": "b", "text": "He sighs, close to tears."},
    ]
    pred.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return ref, pred


def test_extractor_labels_each_free_text_prediction(llm_server, files):
    ref, pred = files
    extract = llm_extractor(llm_server.url)  # the served model is found through /v1/models
    seen = []

    def counted(text):
        labels = extract(text)
        seen.append((text, labels))
        return labels

    result = score_files("ov", ref, pred, extractor=counted, semantic=False)
    assert [text for text, _ in seen] == ["She is furious and shouts.", "He sighs, close to tears."]
    assert all(isinstance(labels, list) and all(isinstance(x, str) for x in labels) for _, labels in seen)
    assert 0.0 <= result["ew"]["level1"]["fscore"] <= 1.0
    assert seen == [(text, extract(text)) for text, _ in seen]  # temperature 0: deterministic
    lexicon = score_files("ov", ref, pred, semantic=False)
    assert lexicon["ew"]["level1"]["fscore"] > 0  # without the extractor the lexicon reads 'furious'


def test_cli_uses_the_extractor_and_bad_endpoints_fail_in_one_line(llm_server, files, capsys):
    ref, pred = files
    args = ["score", "--task", "ov", "--ref", str(ref), "--pred", str(pred), "--json", "--no-semantic"]
    assert main([*args, "--extractor-endpoint", llm_server.url, "--extractor-model", "judge"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 2

    assert main([*args, "--extractor-endpoint", "http://127.0.0.1:9/v1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot list the models") and err.count("\n") == 1
