"""One prepared GPU check with random weights at real sizes; prints one table (run through eval/gpu/check.sh).

    bash eval/gpu/check.sh                # one H200: about 6-8 minutes
    bash eval/gpu/check.sh --cpu-smoke    # the same code paths on tiny models, on a CPU (the test suite runs it)

Rows (each measured in its own process, so each peak memory is its own):
- Qwen2.5-Omni-7B thinker SFT, LoRA and QLoRA (4-bit NF4): step time and peak memory at 16 frames of 360x640
  plus 30 s of audio interleaved (`build_sft_trainer`, as `affectreason train sft`).
- Qwen2.5-Omni-7B GRPO: one optimizer step of 4 prompts x 4 completions (`build_grpo_trainer`, HF generation).
- describe throughput: clips/s through the HF engine at batch 1 and 8 (`create_engine`, as `affectreason describe`).
- Qwen3-Omni-30B-A3B thinker with its real widths but 1 and 2 decoder layers, LoRA in bf16: the per-layer
  difference extrapolates the peak to all 48 layers (4-bit is refused on this family: bitsandbytes leaves the
  fused MoE experts in bf16).

Uses only what the training code uses (torch, transformers, trl, peft, bitsandbytes for the QLoRA row); works
with torch 2.11 + transformers 5.17. The 7B builder is `eval/perf/train_step.py`'s.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "eval" / "perf"))

# Qwen3-Omni-30B-A3B thinker widths (its published config.json); layers are set per row.
MOE_TEXT = {
    "vocab_size": 152064,
    "hidden_size": 2048,
    "intermediate_size": 768,
    "moe_intermediate_size": 768,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "head_dim": 128,
    "num_experts": 128,
    "num_experts_per_tok": 8,
}
MOE_LAYERS = 48
MOE_ROPE = {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [24, 20, 20]}
MOE_VISION = {
    "depth": 27,
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_heads": 16,
    "out_hidden_size": 2048,
    "patch_size": 16,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "num_position_embeddings": 2304,
    "deepstack_visual_indexes": [8, 16, 24],
}
MOE_AUDIO = {
    "encoder_layers": 32,
    "d_model": 1280,
    "encoder_ffn_dim": 5120,
    "encoder_attention_heads": 20,
    "output_dim": 2048,
    "num_mel_bins": 128,
    "downsample_hidden_size": 480,
}


def _peak_gib(cuda: bool) -> float:
    import resource

    import torch

    if cuda:
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def moe_checkpoint(out: Path, layers: int, *, real: bool, device: str) -> Path:
    """A random Qwen3-Omni thinker with `layers` decoder layers: real widths (`real`) or the tiny test widths."""
    import torch
    from transformers import (
        AutoConfig,
        AutoProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
        Qwen3OmniMoeThinkerForConditionalGeneration,
    )

    from affectreason.backbones.tiny import build_tiny_checkpoint

    tiny = build_tiny_checkpoint("qwen3_omni", out / "tokenizer-source")
    config = AutoConfig.from_pretrained(tiny)
    processor = AutoProcessor.from_pretrained(tiny)
    config.text_config.num_hidden_layers = layers
    if real:
        for section, values in (
            (config.text_config, MOE_TEXT),
            (config.vision_config, MOE_VISION),
            (config.audio_config, MOE_AUDIO),
        ):
            for key, value in values.items():
                setattr(section, key, value)
        config.text_config.rope_parameters = dict(MOE_ROPE)
        patches = {"patch_size": 16, "merge_size": 2, "temporal_patch_size": 2}
        processor.image_processor = Qwen2VLImageProcessor(**patches)
        processor.video_processor = Qwen2VLVideoProcessor(**patches)
    with torch.device(device):
        model = Qwen3OmniMoeThinkerForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    path = out / f"moe-{layers}"
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def labels_file(root: Path, *, seconds: float, size: tuple[int, int], rows: int) -> Path:
    """`rows` clips with video + audio and reference emotions (captions for SFT, labels for GRPO)."""
    from train_step import CAPTION

    from affectreason import synth

    lines = ["video,caption,emotions"]
    for i in range(rows):
        synth.write_clip(root / f"clip{i}.mp4", duration=seconds, fps=4, size=size, audio=True, motion=0.5)
        lines.append(f'clip{i}.mp4,"{CAPTION}","happy, surprised"')
    path = root / "labels.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def grpo_worker(spec: dict) -> dict:
    """One timed optimizer step of GRPO (after one warm-up step): prompts x completions as in the spec."""
    import torch
    from transformers import TrainerCallback

    from affectreason.train.config import build_recipe
    from affectreason.train.grpo import build_grpo_trainer

    cuda = spec["device"] == "cuda"
    times: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if cuda:
                torch.cuda.synchronize()
            self.start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if cuda:
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.start)

    generations = spec["completions"]
    recipe = build_recipe(
        {"method": "grpo", "model": {"name_or_path": spec["model"]}},
        [
            f"data.path={spec['captions']}",
            f"data.frames={spec['frames']}",
            f"output_dir={spec['output_dir']}",
            "max_steps=2",
            f"per_device_train_batch_size={generations}",
            f"gradient_accumulation_steps={spec['prompts']}",
            "save_steps=100000",
            "report_to=none",
            f"num_generations={generations}",
            f"max_completion_length={spec['new_tokens']}",
            *spec["overrides"],
        ],
    )
    trainer, _, _ = build_grpo_trainer(recipe)
    trainer.add_callback(StepTimer())
    trainer.train()
    return {"step_s": times[-1], "peak_gib": _peak_gib(cuda)}


def describe_worker(spec: dict) -> dict:
    """Clips per second through the HF engine at the given batch size (greedy, fixed new tokens)."""
    from affectreason.engines.base import Request, SamplingParams
    from affectreason.media import load_clip
    from affectreason.pipeline import create_engine

    engine = create_engine("hf", model=spec["model"], batch_size=spec["batch"], device=spec["device"])
    clip = load_clip(spec["clip"], frames=spec["frames"])
    requests = [Request(clip, "Describe the emotion.") for _ in range(spec["batch"])]
    sampling = SamplingParams(max_new_tokens=spec["new_tokens"])
    engine.generate(requests, sampling)  # warm-up
    rates = []
    for _ in range(2):
        start = time.perf_counter()
        engine.generate(requests, sampling)
        rates.append(len(requests) / (time.perf_counter() - start))
    return {"clips_per_s": statistics.median(rates), "peak_gib": _peak_gib(spec["device"] == "cuda")}


def sft_worker(spec: dict) -> dict:
    from train_step import worker

    return worker(spec)


WORKERS = {"sft": sft_worker, "grpo": grpo_worker, "describe": describe_worker}


def measure(kind: str, spec: dict, *, isolated: bool = True) -> dict:
    """Run one row, in a fresh process when `isolated` (so its peak memory is its own); a failure becomes the
    row's error, not the end of the check."""
    if not isolated:  # the CPU smoke: same code paths, without paying a Python start-up per row
        try:
            return WORKERS[kind](spec)
        except Exception as exc:  # noqa: BLE001 - reported in the table
            return {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:160]}
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", kind, json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or ["no output"]
        return {"error": lines[-1][:160]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cpu-smoke", action="store_true", help="tiny models on the CPU: checks the code paths"
    )
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON")
    parser.add_argument("--worker", nargs=2, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        kind, spec = args.worker
        print(json.dumps(WORKERS[kind](json.loads(spec))))
        return 0

    smoke = args.cpu_smoke
    if not smoke:
        import torch

        if not torch.cuda.is_available():
            print("error: no CUDA device; use --cpu-smoke on a CPU", file=sys.stderr)
            return 2
    device = "cpu" if smoke else "cuda"
    root = args.workdir or Path(tempfile.mkdtemp(prefix="gpu-check-"))
    root.mkdir(parents=True, exist_ok=True)
    frames, seconds, size = (2, 2.0, (64, 48)) if smoke else (16, 30.0, (640, 360))
    new_tokens = 4 if smoke else 64
    start = time.perf_counter()

    from affectreason.backbones.tiny import build_tiny_checkpoint

    if smoke:
        omni = build_tiny_checkpoint("qwen2_5_omni", root / "omni")
    else:
        from train_step import build_omni_7b

        omni = build_omni_7b(root, layers=None, device=device)
    labels = labels_file(root, seconds=seconds, size=size, rows=4)
    base = {"model": str(omni), "captions": str(labels), "frames": frames, "device": device}
    rows: list[tuple[str, dict]] = []
    steps = 2 if smoke else 4
    for name, overrides in (("LoRA", []), ("QLoRA 4-bit", ["model.quantization=4bit"])):
        spec = {**base, "steps": steps, "overrides": overrides, "output_dir": str(root / f"sft-{name[:4]}")}
        rows.append((f"Qwen2.5-Omni-7B SFT {name}, batch 1", measure("sft", spec, isolated=not smoke)))
    grpo = {**base, "prompts": 2 if smoke else 4, "completions": 2 if smoke else 4, "new_tokens": new_tokens}
    result = measure("grpo", {**grpo, "overrides": [], "output_dir": str(root / "grpo")}, isolated=not smoke)
    rows.append((f"Qwen2.5-Omni-7B GRPO step, {grpo['prompts']} prompts x {grpo['completions']}", result))
    for batch in (1, 2) if smoke else (1, 8):
        spec = {**base, "clip": str(root / "clip0.mp4"), "batch": batch, "new_tokens": new_tokens}
        rows.append(
            (
                f"describe, batch {batch}, {new_tokens} new tokens",
                measure("describe", spec, isolated=not smoke),
            )
        )

    moe = {}
    for layers in (1, 2):
        checkpoint = moe_checkpoint(root / "moe", layers, real=not smoke, device=device)
        spec = {
            **base,
            "model": str(checkpoint),
            "steps": steps,
            "overrides": [],
            "output_dir": str(root / f"m{layers}"),
        }
        moe[layers] = measure("sft", spec, isolated=not smoke)
        rows.append((f"Qwen3-Omni-30B-A3B widths, {layers} layer(s), LoRA bf16", moe[layers]))
    if all("peak_gib" in moe[n] for n in (1, 2)):
        per_layer = moe[2]["peak_gib"] - moe[1]["peak_gib"]
        total = moe[1]["peak_gib"] + (MOE_LAYERS - 1) * per_layer
        rows.append(
            (
                f"Qwen3-Omni-30B-A3B, {MOE_LAYERS} layers (extrapolated)",
                {"peak_gib": total, "per_layer_gib": per_layer},
            )
        )
    rows.append(
        ("Qwen3-Omni-30B-A3B 4-bit", {"note": "refused: bitsandbytes leaves the fused MoE experts in bf16"})
    )

    label = "tiny models, CPU (smoke)" if smoke else f"random weights, {device}"
    print(f"GPU check: {label}; {frames} frames {size[0]}x{size[1]}, {seconds:g} s audio")
    print(f"| {'row':<58} | {'step s':>7} | {'clips/s':>7} | {'peak GiB':>8} | note")
    print(f"|{'-' * 60}|{'-' * 9}|{'-' * 9}|{'-' * 10}|------")
    for name, values in rows:
        step = f"{values['step_s']:.2f}" if "step_s" in values else ""
        rate = f"{values['clips_per_s']:.2f}" if "clips_per_s" in values else ""
        peak = f"{values['peak_gib']:.1f}" if "peak_gib" in values else ""
        note = (
            values.get("error")
            or values.get("note")
            or (f"{values['per_layer_gib']:.2f} GiB per layer" if "per_layer_gib" in values else "")
        )
        print(f"| {name:<58} | {step:>7} | {rate:>7} | {peak:>8} | {note}")
    print(
        f"({time.perf_counter() - start:.0f} s in all; peak = CUDA max allocated, or process peak RSS on CPU)"
    )
    if args.json:
        args.json.write_text(json.dumps(dict(rows), indent=1) + "\n")
    return 1 if any("error" in values for _, values in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
