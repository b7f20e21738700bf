"""SFT step time and peak memory, side by side: LoRA against QLoRA and against no gradient checkpointing.

Run: python eval/perf/train_step.py [--steps 4] [--variants ...]        (tiny random Qwen2.5-Omni thinker, CPU)
     python eval/perf/train_step.py --gpu                               (Qwen2.5-Omni-7B thinker, CUDA)

With `--gpu` the real Qwen2.5-Omni-7B thinker architecture (its published dimensions, written below) is built
with random weights in bf16 on the GPU, saved once, and loaded back through `load_backbone` like a hub
checkpoint (so 4-bit QLoRA quantizes it exactly as for the real weights), then trained on a 30 s 360x640
clip at 16 frames with its audio interleaved. `--layers N` shrinks every stack to N layers (widths kept) for
a dry run of the same code path on a CPU.

Each variant trains in its own process through `build_sft_trainer` (trl's SFTTrainer with the multimodal
collator, exactly as `affectreason train sft`), so its peak memory is its own: CUDA's max allocated, or the
process's peak RSS on CPU. The step time (wall, and the process's CPU time, which a busy machine disturbs
less) is the median over the steps after the first (warm-up): forward, backward and optimizer update of one
batch; fetching the batch (media decoding, the processor) is outside it, as it runs in dataloader workers.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Qwen2.5-Omni-7B thinker (config.json of Qwen/Qwen2.5-Omni-7B).
OMNI_7B_TEXT = {
    "vocab_size": 152064,
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "max_position_embeddings": 32768,
    "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
    "tie_word_embeddings": False,
}
OMNI_7B_VISION = {
    "depth": 32,
    "hidden_size": 1280,
    "intermediate_size": 3420,
    "num_heads": 16,
    "out_hidden_size": 3584,
    "patch_size": 14,
    "spatial_merge_size": 2,
    "temporal_patch_size": 2,
    "window_size": 112,
    "fullatt_block_indexes": [7, 15, 23, 31],
}
OMNI_7B_AUDIO = {
    "num_mel_bins": 128,
    "encoder_layers": 32,
    "encoder_attention_heads": 20,
    "encoder_ffn_dim": 5120,
    "d_model": 1280,
    "output_dim": 3584,
    "n_window": 100,
    "max_source_positions": 1500,
}
# Special-token ids are taken from the (tiny) tokenizer the random checkpoint ships with.
_TOKEN_ID_FIELDS = (
    "audio_token_index",
    "image_token_index",
    "video_token_index",
    "audio_start_token_id",
    "audio_end_token_id",
    "vision_start_token_id",
    "vision_end_token_id",
    "user_token_id",
    "pad_token_id",
)
CAPTION = (
    "She leans forward with a wide smile and raised eyebrows, laughing between words; her voice is loud, "
    "high and fast, and she says she cannot believe they won, so the joy is mixed with surprise and relief."
)
CPU_VARIANTS = {
    "lora": [],
    "lora-no-checkpointing": ["activation_checkpointing=false"],
    "lora-8bit": ["model.quantization=8bit"],
    "qlora-4bit": ["model.quantization=4bit"],
}
GPU_VARIANTS = {"lora": [], "qlora-4bit": ["model.quantization=4bit"]}


def build_omni_7b(out: Path, *, layers: int | None, device: str) -> Path:
    """A random-weight Qwen2.5-Omni-7B thinker checkpoint (bf16) with a real processor at 14-pixel patches."""
    import torch
    from transformers import (
        AutoConfig,
        AutoProcessor,
        Qwen2_5OmniThinkerConfig,
        Qwen2_5OmniThinkerForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
    )

    from affectreason.backbones.tiny import build_tiny_checkpoint

    tiny = build_tiny_checkpoint("qwen2_5_omni", out / "tokenizer-source")
    processor = AutoProcessor.from_pretrained(tiny)
    patches = {"patch_size": 14, "merge_size": 2, "temporal_patch_size": 2}
    processor.image_processor = Qwen2VLImageProcessor(**patches)
    processor.video_processor = Qwen2VLVideoProcessor(**patches)
    tiny_config = AutoConfig.from_pretrained(tiny)
    tokenizer = processor.tokenizer
    text = {**OMNI_7B_TEXT, "pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
    vision, audio = dict(OMNI_7B_VISION), dict(OMNI_7B_AUDIO)
    if layers:
        text["num_hidden_layers"], audio["encoder_layers"] = layers, layers
        vision["depth"], vision["fullatt_block_indexes"] = layers, [layers - 1]
    config = Qwen2_5OmniThinkerConfig(
        text_config=text,
        vision_config=vision,
        audio_config=audio,
        **{field: getattr(tiny_config, field) for field in _TOKEN_ID_FIELDS},
    )
    with torch.device(device):
        model = Qwen2_5OmniThinkerForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    checkpoint = out / "omni-7b-random"
    model.save_pretrained(checkpoint)
    processor.save_pretrained(checkpoint)
    del model
    return checkpoint


def write_captions(root: Path, *, seconds: float, size: tuple[int, int]) -> Path:
    from affectreason import synth

    synth.write_clip(root / "clip.mp4", duration=seconds, fps=4, size=size, audio=True, motion=0.5)
    path = root / "captions.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["video", "caption", "emotions", "subtitle"])
        writer.writerow(["clip.mp4", CAPTION, "happy, surprised, relieved", "I can't believe we won!"])
    return path


def worker(spec: dict) -> dict:
    """Train `steps` SFT steps of one variant in this process and measure them."""
    import resource

    import torch
    from transformers import TrainerCallback

    from affectreason.train.config import build_recipe
    from affectreason.train.sft import build_sft_trainer

    cuda = torch.cuda.is_available() and spec["device"] == "cuda"
    times: list[tuple[float, float]] = []

    class StepTimer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            if cuda:
                torch.cuda.synchronize()
            self.start = (time.perf_counter(), time.process_time())

        def on_step_end(self, args, state, control, **kwargs):
            if cuda:
                torch.cuda.synchronize()
            times.append((time.perf_counter() - self.start[0], time.process_time() - self.start[1]))

    recipe = build_recipe(
        {"method": "sft", "model": {"name_or_path": spec["model"]}},
        [
            f"data.path={spec['captions']}",
            f"data.frames={spec['frames']}",
            "dataloader_num_workers=0",
            f"output_dir={spec['output_dir']}",
            f"max_steps={spec['steps']}",
            "per_device_train_batch_size=1",
            "gradient_accumulation_steps=1",
            "save_steps=100000",
            "logging_steps=1",
            "report_to=none",
            *spec["overrides"],
        ],
    )
    trainer, backbone, _ = build_sft_trainer(recipe)
    tokens = int(trainer.data_collator([trainer.train_dataset[0]])["input_ids"].shape[1])
    trainer.add_callback(StepTimer())
    trainer.train()
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 2**30
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    trainable = sum(p.numel() for p in backbone.model.parameters() if p.requires_grad)
    measured = times[1:] or times
    return {
        "step_s": statistics.median(t[0] for t in measured),
        "cpu_s": statistics.median(t[1] for t in measured),
        "peak_gib": peak,
        "tokens": tokens,
        "trainable": trainable,
    }


def run_variant(name: str, spec: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise SystemExit(f"variant {name} failed:\n{tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gpu", action="store_true", help="Qwen2.5-Omni-7B architecture on CUDA.")
    parser.add_argument("--steps", type=int, default=4, help="Steps per variant (the first is warm-up).")
    parser.add_argument("--frames", type=int, default=None, help="Frames per clip (default: 16 GPU, 4 CPU).")
    parser.add_argument("--seconds", type=float, default=None, help="Clip length (default: 30 GPU, 2 CPU).")
    parser.add_argument(
        "--layers", type=int, default=None, help="Shrink the 7B stacks to N layers (dry run)."
    )
    parser.add_argument("--variants", nargs="*", default=None, help="Subset of the variants to run.")
    parser.add_argument("--workdir", type=Path, default=None, help="Keep the checkpoint and clip here.")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return

    large = args.gpu or args.layers is not None
    device = "cuda" if args.gpu else "cpu"
    frames = args.frames or (16 if large else 4)
    seconds = args.seconds or (30.0 if large else 2.0)
    variants = GPU_VARIANTS if args.gpu else CPU_VARIANTS
    chosen = {k: v for k, v in variants.items() if not args.variants or k in args.variants}
    root = args.workdir or Path(tempfile.mkdtemp(prefix="train-step-"))
    root.mkdir(parents=True, exist_ok=True)

    from affectreason.backbones.tiny import build_tiny_checkpoint

    start = time.perf_counter()
    if large:
        model = build_omni_7b(root, layers=args.layers, device=device)
        captions = write_captions(root, seconds=seconds, size=(640, 360))
        label = f"Qwen2.5-Omni-7B thinker{f' ({args.layers} layers)' if args.layers else ''}, random weights"
    else:
        model = build_tiny_checkpoint("qwen2_5_omni", root / "tiny")
        captions = write_captions(root, seconds=seconds, size=(64, 48))
        label = "tiny random Qwen2.5-Omni thinker"
    print(
        f"{label} on {device}: {frames} frames, {seconds:g} s audio, batch 1 (setup {time.perf_counter() - start:.0f} s)"
    )

    results = {}
    for name, overrides in chosen.items():
        spec = {
            "model": str(model),
            "captions": str(captions),
            "frames": frames,
            "steps": args.steps,
            "device": device,
            "output_dir": str(root / f"run-{name}"),
            "overrides": overrides,
        }
        results[name] = run_variant(name, spec)

    base = results[next(iter(results))]
    print(
        f"{'variant':<24}{'step s':>9}{'x':>7}{'cpu s':>9}{'x':>7}{'peak GiB':>10}{'x':>7}{'tokens':>8}{'trainable':>12}"
    )
    for name, r in results.items():
        print(
            f"{name:<24}{r['step_s']:>9.3f}{r['step_s'] / base['step_s']:>7.2f}"
            f"{r['cpu_s']:>9.3f}{r['cpu_s'] / base['cpu_s']:>7.2f}{r['peak_gib']:>10.2f}"
            f"{r['peak_gib'] / base['peak_gib']:>7.2f}{r['tokens']:>8}{r['trainable']:>12,}"
        )
    if args.gpu and "qlora-4bit" in results:
        peak = results["qlora-4bit"]["peak_gib"]
        print(
            f"QLoRA 7B fits in 24 GB: {'yes' if peak < 24 * 1e9 / 2**30 else 'no'} (peak {peak:.1f} GiB allocated)"
        )


if __name__ == "__main__":
    main()
