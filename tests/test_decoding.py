"""One decoding spec: greedy is greedy on every engine, and every decoding parameter is recorded."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from affectreason.cli import main
from affectreason.decoding import (
    SamplingParams,
    hf_generation_config,
    openai_request_kwargs,
    vllm_sampling_kwargs,
)
from affectreason.errors import AffectReasonError

FAST = ["--max-new-tokens", "12", "--frames", "2", "--format", "json"]


def _describe(capsys, *args):
    code = main(["describe", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture(scope="module")
def checkpoint_with_penalty(tiny_qwen2_5_omni, tmp_path_factory):
    """The tiny thinker re-saved with sampling knobs in its generation_config.json, as published checkpoints do."""
    folder = tmp_path_factory.mktemp("penalised") / "model"
    shutil.copytree(tiny_qwen2_5_omni, folder)
    config_path = folder / "generation_config.json"
    config = json.loads(config_path.read_text())
    config.update(repetition_penalty=1.8, no_repeat_ngram_size=2, top_k=3, min_new_tokens=12)
    config_path.write_text(json.dumps(config))
    return folder


@pytest.fixture
def transformers_log():
    """The messages transformers logs (its logger does not propagate, so capsys and caplog miss them)."""
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)


def test_greedy_through_hf_ignores_the_checkpoints_sampling_knobs(
    capsys, transformers_log, tiny_qwen2_5_omni, checkpoint_with_penalty, clip_av
):
    runs = {}
    for name, model, extra in (
        ("clean", tiny_qwen2_5_omni, []),
        ("asked", tiny_qwen2_5_omni, ["--repetition-penalty", "1.8"]),
        ("sampled", tiny_qwen2_5_omni, ["--temperature", "0.7", "--top-k", "5", "--seed", "1"]),
        ("penalised", checkpoint_with_penalty, []),
    ):
        code, out, err = _describe(capsys, str(clip_av), "--model", str(model), *FAST, *extra)
        assert code == 0, err
        runs[name] = json.loads(out)
        if name != "penalised":  # that checkpoint's own config draws a load-time notice from transformers
            assert transformers_log == [], name  # our generation config makes generate say nothing per call
    assert runs["penalised"]["raw"] == runs["clean"]["raw"]
    # the penalty does change this model's greedy text when it is asked for, so the equality above means something
    assert runs["asked"]["raw"] != runs["clean"]["raw"]
    assert runs["clean"]["decoding"] == {
        "greedy": True,
        "temperature": 0.0,
        "top_p": 1.0,
        "top_k": 0,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "max_new_tokens": 12,
        "seed": None,
        "num_return_sequences": 1,
    }
    assert runs["asked"]["decoding"]["repetition_penalty"] == 1.8


def test_hf_config_takes_only_token_ids_from_the_checkpoint():
    from transformers import GenerationConfig

    checkpoint = GenerationConfig(
        eos_token_id=[5, 7],
        pad_token_id=1,
        repetition_penalty=1.3,
        top_k=20,
        no_repeat_ngram_size=3,
        min_new_tokens=4,
    )
    greedy = hf_generation_config(SamplingParams(max_new_tokens=9), checkpoint, [3])
    assert (greedy.do_sample, greedy.repetition_penalty, greedy.max_new_tokens) == (False, 1.0, 9)
    assert (greedy.eos_token_id, greedy.pad_token_id, greedy.suppress_tokens) == ([5, 7], 1, [3])
    assert greedy.top_k != 20 and greedy.no_repeat_ngram_size == 0 and greedy.min_new_tokens == 0
    sampled = hf_generation_config(SamplingParams(temperature=0.7, top_p=0.8, top_k=4, seed=1), checkpoint)
    assert (sampled.do_sample, sampled.temperature, sampled.top_p, sampled.top_k) == (True, 0.7, 0.8, 4)


def test_vllm_and_openai_parameters_come_from_the_same_spec():
    greedy = SamplingParams(top_p=0.5, top_k=7, max_new_tokens=7)
    assert vllm_sampling_kwargs(greedy) == {
        "temperature": 0.0,
        "top_p": 1.0,
        "top_k": -1,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "max_tokens": 7,
        "n": 1,
    }
    sampled = SamplingParams(
        temperature=0.8, top_p=0.9, top_k=5, repetition_penalty=1.1, seed=5, num_return_sequences=4
    )
    assert vllm_sampling_kwargs(sampled) == {
        "temperature": 0.8,
        "top_p": 0.9,
        "top_k": 5,
        "min_p": 0.0,
        "repetition_penalty": 1.1,
        "max_tokens": 512,
        "n": 4,
        "seed": 5,
    }
    assert openai_request_kwargs(greedy) == ({"temperature": 0.0, "top_p": 1.0, "max_tokens": 7, "n": 1}, {})
    assert openai_request_kwargs(sampled) == (
        {"temperature": 0.8, "top_p": 0.9, "max_tokens": 512, "n": 4, "seed": 5},
        {"top_k": 5, "repetition_penalty": 1.1},
    )


def test_suite_generation_kwargs_are_checked_and_applied(tmp_path):
    from affectreason.bench.suites import load_suite
    from affectreason.pipeline import DescribeOptions

    suite = tmp_path / "mine.yaml"
    dataset = (
        "datasets: [{name: d, folder: d, format: npz, annotation: a.npz, task: discrete, metric: accuracy}]"
    )
    suite.write_text(f"{dataset}\ngeneration_kwargs: {{max_new_tokens: 64, do_sample: false, top_k: 0}}\n")
    settings = load_suite(suite).generation_kwargs
    options = DescribeOptions(temperature=0.5).with_decoding(settings)
    assert (options.temperature, options.max_new_tokens) == (0.0, 64)
    suite.write_text(f"{dataset}\ngeneration_kwargs: {{max_new_token: 64}}\n")
    with pytest.raises(AffectReasonError, match="did you mean 'max_new_tokens'"):
        load_suite(suite)
    suite.write_text(f"{dataset}\ngeneration_kwargs: {{temperature: -1}}\n")
    with pytest.raises(AffectReasonError, match="temperature"):
        load_suite(suite)


def test_bench_records_the_suites_generation_kwargs_and_flags_override_them(tiny_qwen2_5_omni, tmp_path):
    import yaml

    from affectreason.bench.suites import load_suite, suite_path
    from affectreason.bench.synthetic import write_data_root

    raw = yaml.safe_load(suite_path("emer").read_text())
    raw["generation_kwargs"] = {"max_new_tokens": 5, "repetition_penalty": 1.2, "do_sample": False}
    suite = tmp_path / "emer_decoding.yaml"
    suite.write_text(yaml.safe_dump(raw))
    root = write_data_root(load_suite(suite), tmp_path / "data", n=1)
    base = ["bench", "run", str(suite), "--data-root", str(root), "--model", str(tiny_qwen2_5_omni)]
    base += ["--frames", "2", "--quiet", "--datasets", "emer_v1"]
    for out, flags, expected in (
        (tmp_path / "suite", [], 5),
        (tmp_path / "flag", ["--max-new-tokens", "7"], 7),
    ):
        assert main([*base, "--out", str(out), *flags]) == 0
        (prediction,) = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
        manifest = json.loads((out / "results.json").read_text())["manifest"]
        assert prediction["decoding"] == manifest["decoding"]
        assert prediction["decoding"]["max_new_tokens"] == expected
        assert prediction["decoding"]["repetition_penalty"] == 1.2 and prediction["decoding"]["greedy"]


def test_endpoint_applies_the_decoding_it_records(capsys, tiny_qwen2_5_omni, clip_av, media_dir):
    from affectreason.backbones.base import load_backbone
    from affectreason.engines.hf import HFEngine
    from affectreason.serve.server import BackgroundServer, ServeOptions, build_app

    flags = ["--repetition-penalty", "1.8", *FAST]
    code, out, err = _describe(capsys, str(clip_av), "--model", str(tiny_qwen2_5_omni), *flags)
    assert code == 0, err
    local = json.loads(out)
    engine = HFEngine(load_backbone(str(tiny_qwen2_5_omni), device="cpu"))
    with BackgroundServer(
        build_app(engine, ServeOptions(served_model_name="tiny", media_dir=media_dir))
    ) as server:
        code, out, err = _describe(capsys, str(clip_av), "--endpoint", server.url, *flags)
    assert code == 0, err
    remote = json.loads(out)
    assert remote["decoding"] == local["decoding"] and remote["decoding"]["repetition_penalty"] == 1.8
    assert remote["raw"] == local["raw"]


def test_the_decoding_spec_is_light():
    import subprocess
    import sys

    code = (
        "import sys, affectreason.decoding, affectreason.bench.suites; "
        "heavy = {'torch', 'transformers', 'vllm'} & set(sys.modules); assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
