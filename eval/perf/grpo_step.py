"""Time per GRPO step split into media inputs, generation, reward, reference log-prob and policy update.

    python eval/perf/grpo_step.py                 # tiny Qwen2.5-Omni thinker on CPU
    python eval/perf/grpo_step.py --gpu           # the Qwen2.5-Omni-7B thinker architecture, random bf16 weights
    python eval/perf/grpo_step.py --gpu --vllm    # the same with vLLM rollouts (needs vllm), side by side with HF

Prints one row per configuration: seconds per step for each phase and its share of the step.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))


def seven_b_checkpoint(tiny: Path, out: Path) -> Path:
    """The 7B thinker's architecture (config defaults) with random bf16 weights and the tiny tokenizer's ids."""
    import torch
    from transformers import (
        AutoConfig,
        AutoProcessor,
        Qwen2_5OmniThinkerConfig,
        Qwen2_5OmniThinkerForConditionalGeneration,
    )

    small = AutoConfig.from_pretrained(tiny)
    config = Qwen2_5OmniThinkerConfig()
    for key in (
        "audio_token_id",
        "image_token_id",
        "video_token_id",
        "audio_start_token_id",
        "vision_start_token_id",
        "vision_end_token_id",
        "audio_end_token_id",
        "user_token_id",
        "position_id_per_seconds",
    ):
        if hasattr(small, key):
            setattr(config, key, getattr(small, key))
    with torch.device("cuda"):
        model = Qwen2_5OmniThinkerForConditionalGeneration(config).to(torch.bfloat16)
    model.save_pretrained(out)
    AutoProcessor.from_pretrained(tiny).save_pretrained(out)
    return out


def run(model: Path, labels: Path, out: Path, steps: int, use_vllm: bool) -> dict:
    from test_grpo import _trainer

    from affectreason.train.grpo_trainer import MultimodalGRPOTrainer

    times: dict[str, float] = defaultdict(float)

    class Timed(MultimodalGRPOTrainer):
        def _timed(self, name, fn, *args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                times[name] += time.perf_counter() - start

        in_loss = False

        def row_features(self, rows):
            return self._timed("inputs", super().row_features, rows)

        def _compute_loss(self, *args, **kwargs):
            self.in_loss = True
            try:
                return super()._compute_loss(*args, **kwargs)
            finally:
                self.in_loss = False

        def _generate_single_turn(self, *args, **kwargs):
            return self._timed("generation", super()._generate_single_turn, *args, **kwargs)

        def _calculate_rewards(self, *args, **kwargs):
            return self._timed("reward", super()._calculate_rewards, *args, **kwargs)

        def _get_per_token_logps_and_entropies(self, *args, **kwargs):
            name = "_policy" if self.in_loss else "log-prob (ref/old)"
            return self._timed(name, super()._get_per_token_logps_and_entropies, *args, **kwargs)

        def training_step(self, *args, **kwargs):
            return self._timed("_step", super().training_step, *args, **kwargs)

    vllm = {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.3} if use_vllm else {}
    _, trainer = _trainer(model, labels, out, ["emotion_wheel", "format"], Timed, **vllm)
    trainer.args.max_steps = steps
    trainer.train()
    step = times.pop("_step") / steps
    times.pop("_policy", None)
    phases = {k: v / steps for k, v in times.items()}
    phases["update (policy fwd+bwd+optim)"] = step - sum(phases.values())
    return {"step": step, **phases}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--vllm", action="store_true", help="also time vLLM rollouts (GPU, vllm installed)")
    args = parser.parse_args(argv)

    from test_grpo import write_labels

    from affectreason.backbones.tiny import build_tiny_checkpoint

    root = Path(tempfile.mkdtemp(prefix="grpo_step_"))
    labels = write_labels(root / "data", count=4)
    model = build_tiny_checkpoint("qwen2_5_omni", root / "tiny")
    name = "tiny Qwen2.5-Omni, CPU"
    if args.gpu:
        model = seven_b_checkpoint(model, root / "7b")
        name = "Qwen2.5-Omni-7B arch (random), GPU"
    configs = [(f"{name}, HF generate", False)]
    if args.vllm:
        configs.append((f"{name}, vLLM colocate", True))
    for label, use_vllm in configs:
        result = run(model, labels, root / label.replace(" ", "_"), args.steps, use_vllm)
        step = result.pop("step")
        print(f"{label}: {step:.3f} s/step")
        for phase, seconds in result.items():
            print(f"  {phase:<32} {seconds:8.3f} s  {seconds / step:6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
