"""The in-process server under load and by the OpenAI contract, over real HTTP with the official client
(issue 13): usage and finish_reason, turn rules, context refusal, seeds sharing a batch, length-grouped
batches, the batcher's schedule, and cancellation of abandoned requests."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import openai
import pytest

from affectreason.decoding import SamplingParams
from affectreason.engines.hf import Job
from affectreason.engines.wire import clip_parts
from affectreason.media import Clip, load_clip
from affectreason.request import Request
from affectreason.serve.batcher import Batcher
from affectreason.serve.server import BackgroundServer, ServeOptions, build_app

KEY = "load-key"
MODEL = "tiny"


@pytest.fixture(scope="module")
def server(engine, media_dir):
    options = ServeOptions(api_key=KEY, served_model_name=MODEL, media_dir=media_dir, max_wait_ms=50)
    with BackgroundServer(build_app(engine, options)) as srv:
        yield srv


@pytest.fixture
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url, api_key=KEY, max_retries=0, timeout=120)


def _ask(client, content, **kwargs):
    kwargs.setdefault("max_tokens", 4)
    return client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": content}], **kwargs
    )


def test_usage_and_length_finish_reason_on_every_response(client, engine):
    response = _ask(client, "Describe the emotion.", max_tokens=3)
    choice = response.choices[0]
    prompt = engine.backbone.build_inputs([Request(load_clip_none(), "Describe the emotion.")])
    assert response.usage.prompt_tokens == prompt["input_ids"].shape[1]
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens
    if choice.finish_reason == "length":
        assert response.usage.completion_tokens == 3
    else:  # the random model may end early; then it said eos before the limit
        assert choice.finish_reason == "stop" and response.usage.completion_tokens < 3

    many = _ask(client, "Describe the emotion.", max_tokens=5, temperature=1.0, n=3, seed=1)
    assert len(many.choices) == 3 and 3 <= many.usage.completion_tokens <= 15
    for c in many.choices:
        assert c.finish_reason in {"stop", "length"}
    assert many.usage.prompt_tokens == response.usage.prompt_tokens

    chunks = list(
        _ask(
            client, "Describe the emotion.", max_tokens=3, stream=True, stream_options={"include_usage": True}
        )
    )
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [choice.finish_reason]
    assert chunks[-1].usage.total_tokens == response.usage.total_tokens


def load_clip_none() -> Clip:
    """The clip the server builds for a text-only request."""
    return Clip(frames=None, frame_times=np.zeros(0), audio=None, duration=0.0, source="request")


def test_a_long_answer_cut_by_max_tokens_says_length(client):
    lengths = {}
    for max_tokens in (1, 2, 40):
        response = _ask(client, "Describe the emotion.", max_tokens=max_tokens)
        lengths[max_tokens] = (response.choices[0].finish_reason, response.usage.completion_tokens)
    # greedy: the same text grows with the limit; a cut answer reports length with exactly the limit
    cut = [(m, r) for m, r in lengths.items() if r[0] == "length"]
    assert cut and all(r[1] == m for m, r in cut)


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}],
        [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}],
        [
            {
                "role": "system",
                "content": [{"type": "video_url", "video_url": {"url": "data:video/mp4;base64,AAAA"}}],
            },
            {"role": "user", "content": "a"},
        ],
    ],
    ids=["second_user_turn", "assistant_turn", "media_in_system"],
)
def test_turns_the_server_does_not_take_are_refused(client, messages):
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=messages, max_tokens=2)
    assert info.value.status_code == 400


def test_a_prompt_over_the_context_is_refused_with_the_token_counts(client, engine):
    rng = random.Random(0)
    words = " ".join(
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 9))) for _ in range(9000)
    )
    with pytest.raises(openai.BadRequestError) as info:
        _ask(client, words)
    message = info.value.body["message"]
    assert f"context is {engine.context_length} tokens" in message and "the prompt is" in message
    fits = " ".join(words.split()[:50])
    with pytest.raises(openai.BadRequestError, match="max_tokens asks for 4090"):
        _ask(client, fits, max_tokens=4090)
    assert _ask(client, fits, max_tokens=2).choices[0].message.content is not None


def test_requests_with_different_seeds_share_a_batch_and_keep_their_answers(client, server, clip_av):
    clip = load_clip(clip_av, frames=4)
    content = [*clip_parts(clip, frozenset({"video", "audio"})), {"type": "text", "text": "Why?"}]
    seeds = [11, 22, 33, 44, 11, 22]

    def ask(seed):
        return _ask(client, content, max_tokens=6, temperature=1.0, seed=seed).choices[0].message.content

    alone = {seed: ask(seed) for seed in (11, 22, 33, 44)}
    batcher = server.app.state.batcher
    before = len(batcher.batches)
    with ThreadPoolExecutor(max_workers=len(seeds)) as pool:
        together = list(pool.map(ask, seeds))
    assert max(list(batcher.batches)[before:]) > 1  # different seeds went into one engine call
    assert together == [alone[s] for s in seeds]
    assert len(set(alone.values())) > 1


def test_clips_of_different_sizes_are_batched_by_length(engine, make_clip):
    small = [Request(make_clip(frames=2, size=(32, 32)), "a") for _ in range(3)]
    large = [Request(make_clip(frames=8, size=(96, 96)), "a") for _ in range(3)]
    requests = [r for pair in zip(small, large, strict=True) for r in pair]
    lengths = [int(engine.backbone.build_inputs([r])["input_ids"].shape[1]) for r in requests]
    groups = engine.batches([engine.backbone.batch_key(r) for r in requests], lengths)
    assert sorted(i for g in groups for i in g) == list(range(len(requests)))
    for group in groups:
        widths = [lengths[i] for i in group]
        assert max(widths) - min(widths) <= 32 + 0.25 * min(widths)  # little padding in any batch
    assert len(groups) == 2


def test_abandoned_requests_are_cancelled(server, client, engine):
    """16 clients that hang up after a moment must not keep the model busy for the next one."""
    batcher = server.app.state.batcher
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Go on."}], "max_tokens": 4000}
    headers = {"Authorization": f"Bearer {KEY}"}

    def hang_up():
        try:
            httpx.post(f"{server.url}/chat/completions", json=body, headers=headers, timeout=0.5)
        except httpx.TimeoutException:
            pass

    threads = [threading.Thread(target=hang_up) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (batcher.queued or batcher.running):
        time.sleep(0.05)
    assert batcher.queued == 0 and batcher.running == 0  # queued ones dropped, running ones stopped
    assert _ask(client, "hi", max_tokens=2).choices[0].message.content is not None


def _long_prompt(words: int) -> str:
    rng = random.Random(1)
    return " ".join("".join(rng.choices("abcdefghij", k=rng.randint(2, 6))) for _ in range(words))


def test_a_short_request_does_not_wait_behind_a_long_one(server, client):
    """A short request sent while a long prompt is generating is answered before the long one ends, and the
    long one, preempted and resumed, still gives the answer it gives alone."""
    long_prompt = _long_prompt(900)
    alone = _ask(client, long_prompt, max_tokens=400)
    assert alone.choices[0].finish_reason == "length", "the random model stopped early; pick another prompt"
    batcher = server.app.state.batcher
    with ThreadPoolExecutor(max_workers=1) as pool:
        long_answer = pool.submit(_ask, client, long_prompt, max_tokens=400)
        deadline = time.monotonic() + 30
        while batcher.running == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)
        short = _ask(client, "hi", max_tokens=2)
        assert not long_answer.done()
        assert short.choices[0].message.content is not None
        resumed = long_answer.result()
    assert resumed.choices[0].message.content == alone.choices[0].message.content
    assert resumed.usage == alone.usage


@pytest.mark.parametrize(
    ("max_batch_size", "schedule"),
    [
        # the two short prompts prefill together, each long one alone (together they pass the prefill budget),
        # then all four decode in one call, which ends when the first answer is done
        (4, [2, 1, 1, 4]),
        # two jobs already hold caches: the long prompt starts only once one of them has finished
        (2, [2, 2, 1, 2]),
    ],
)
def test_new_prompts_start_while_there_is_room_then_decode_with_the_started_ones(
    engine, max_batch_size, schedule
):
    """The batcher's schedule on the real engine: new prompts first while fewer than `max_batch_size` jobs hold
    caches, short ones together, long ones alone past the prefill budget; every started job decodes in one
    call whatever its prompt length. Each answer is the one the job gives alone."""
    long_prompts = [_long_prompt(900), _long_prompt(880)]
    tokenizer = engine.backbone.tokenizer
    assert all(len(tokenizer(p)["input_ids"]) > 1024 for p in long_prompts)  # two pass the 2,048-token budget
    prompts = ["Why?", "How so?", *long_prompts][: max_batch_size + 1]
    limits = [3, 12, 9, 6][: len(prompts)]

    def jobs() -> list[Job]:
        made = [
            Job(
                Request(load_clip_none(), prompt),
                SamplingParams(temperature=1.0, max_new_tokens=limit, seed=i),
            )
            for i, (prompt, limit) in enumerate(zip(prompts, limits, strict=True))
        ]
        for job in made:
            engine.prepare(job)  # as the server does at admission
        return made

    async def run() -> tuple[list[str], list[str], list[int]]:
        batcher = Batcher(engine, max_batch_size=max_batch_size, max_wait_ms=200)
        await batcher.start()
        try:
            alone = [(await batcher.submit(job))[0].text for job in jobs()]
            before = len(batcher.batches)
            together = await asyncio.gather(*(batcher.submit(job) for job in jobs()))
            return alone, [c[0].text for c in together], list(batcher.batches)[before:]
        finally:
            await batcher.stop()

    alone, together, sizes = asyncio.run(run())
    assert together == alone
    assert sizes[: len(schedule)] == schedule
