"""Evaluation during training in the task's metric: at every evaluation the policy describes the eval clips and
the answers are scored with the `score` library (emotion-wheel F1, hit rate, parse rate) beside the loss.

The scores go through `trainer.log`, so they reach the console, TensorBoard / W&B and `log_history` (and from
there the model card), and into the metrics `trainer.evaluate()` returns.
"""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback

from affectreason.decoding import SamplingParams
from affectreason.rationale import parse_rationale
from affectreason.request import Request


class EmotionEvalCallback(TrainerCallback):
    """Greedy answers on the eval rows, scored against their reference emotions, at each `on_evaluate`."""

    def __init__(self, backbone: Any, examples: list[Any], data: Any, prompt: str, batch_size: int) -> None:
        self.backbone = backbone
        self.examples = examples
        self.data = data
        self.prompt = prompt
        self.max_new_tokens = data.eval_max_new_tokens
        self.batch_size = batch_size
        self.trainer: Any = None  # set by `attach`

    @classmethod
    def attach(cls, trainer: Any, backbone: Any, examples: list[Any], data: Any, prompt: str) -> None:
        """Score `examples` at every evaluation of `trainer` (any method: sft, grpo, dpo)."""
        callback = cls(backbone, examples, data, prompt, trainer.args.per_device_eval_batch_size)
        callback.trainer = trainer
        trainer.add_callback(callback)

    def scores(self) -> dict[str, float]:
        """EW-F1 (level-1 families), hit rate and parse rate of the current policy on the eval rows."""
        import torch

        from affectreason.engines.hf import HFEngine
        from affectreason.scoring import score_records
        from affectreason.train.collator import load_row_clip
        from affectreason.train.rewards import reference_of

        rows = [
            {"id": e.id, "video": e.video, "audio": e.audio, "subtitle": e.subtitle} for e in self.examples
        ]
        requests = [Request(clip=load_row_clip(row, self.data), prompt=self.prompt) for row in rows]
        model = self.backbone.model
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                texts = HFEngine(self.backbone, self.batch_size).generate(
                    requests, SamplingParams(max_new_tokens=self.max_new_tokens, temperature=0.0)
                )
        finally:
            model.train(was_training)
        answers = [parse_rationale(text) for text in texts]
        refs = {e.id: {"emotions": reference_of(e)["emotions"]} for e in self.examples}
        preds = {e.id: {"emotions": a.emotions} for e, a in zip(self.examples, answers)}
        ew = score_records("ov", refs, preds)["ew"]["level1"]["fscore"]
        hit = score_records("discrete", refs, preds)["hit_rate"]
        return {
            "eval_ew_f1": float(ew or 0.0),
            "eval_hit_rate": float(hit or 0.0),
            "eval_parse_rate": sum(a.parse_ok for a in answers) / max(1, len(answers)),
        }

    def on_evaluate(
        self, args: Any, state: Any, control: Any, metrics: dict[str, float] | None = None, **_: Any
    ):
        scores = self.scores()
        if metrics is not None:
            metrics.update(scores)
        if self.trainer is not None:
            self.trainer.log(scores)
        return control
