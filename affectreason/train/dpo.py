"""DPO on video + audio preference pairs: the `dpo` recipe, the pair reader, the preference collator and the entry.

Pairs come from a JSONL or CSV file with `video` (or `audio`), `chosen`, `rejected` and optional `subtitle`, e.g.
written by `affectreason data pairs`. trl's DPOTrainer forwards every batch key to the model, so a collator that
builds chosen and rejected rows with the clip's media (through the shared `MultimodalCollator`) is all it needs.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from affectreason.errors import AffectReasonError
from affectreason.train.config import Recipe


def read_pairs(path: str | Path) -> list[dict[str, Any]]:
    """Preference rows with absolute media paths; a missing column or file is one error line."""
    path = Path(path)
    if not path.is_file():
        raise AffectReasonError(f"no pairs file {path}")
    try:
        if path.suffix.lower() == ".csv":
            with path.open(newline="", encoding="utf-8") as handle:
                records = list(csv.DictReader(handle))
        else:
            lines = path.read_text(encoding="utf-8").splitlines()
            records = [json.loads(line) for line in lines if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise AffectReasonError(f"cannot read pairs {path}: {str(exc).splitlines()[0]}") from None
    rows = []
    for number, record in enumerate(records, 1):
        if not isinstance(record, dict):
            raise AffectReasonError(f"{path} row {number}: expected an object")
        missing = [k for k in ("chosen", "rejected") if not str(record.get(k) or "").strip()]
        if missing or not (record.get("video") or record.get("audio")):
            raise AffectReasonError(
                f"{path} row {number}: needs video (or audio), chosen and rejected; missing {missing or ['video']}"
            )
        media = {}
        for key in ("video", "audio"):
            if record.get(key):
                resolved = Path(record[key]) if Path(record[key]).is_absolute() else path.parent / record[key]
                if not resolved.is_file():
                    raise AffectReasonError(f"{path} row {number}: no media file {resolved}")
                media[key] = str(resolved)
        rows.append(
            {
                "id": str(record.get("id") or number),
                "video": media.get("video"),
                "audio": media.get("audio"),
                "subtitle": record.get("subtitle") or None,
                "prompt": "",
                "chosen": str(record["chosen"]),
                "rejected": str(record["rejected"]),
            }
        )
    if not rows:
        raise AffectReasonError(f"{path} holds no pairs")
    return rows


def _dpo_trainer_class() -> type:
    """trl's DPOTrainer whose rows stay raw: the collator builds every sequence from the clip and the texts.

    trl prepares a non-image dataset itself (prompt extraction, an EOS appended to `chosen`/`rejected`,
    tokenisation); our collator already ends each response with one end-of-turn and labels it, so that
    preparation would train on a doubled end-of-turn. Image datasets skip it in trl for the same reason.
    """
    from trl import DPOTrainer

    class MultimodalDPOTrainer(DPOTrainer):
        def _prepare_dataset(self, dataset: Any, *args: Any, **kwargs: Any) -> Any:
            return dataset

    return MultimodalDPOTrainer


class PreferenceCollator:
    """Rows -> one batch: chosen sequences then rejected ones (trl's layout), each with the clip's media."""

    def __init__(self, collator: Any) -> None:
        self.collator = collator  # the shared MultimodalCollator

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        requests = self.collator.requests(rows)
        responses = [row["chosen"] for row in rows] + [row["rejected"] for row in rows]
        batch = self.collator.batch(requests + requests, responses)
        labels = batch.pop("labels")
        batch["completion_mask"] = (labels != -100).long()
        return batch


def build_dpo_trainer(recipe: Recipe) -> tuple[Any, Any, list[dict[str, Any]]]:
    """trl's DPOTrainer on the recipe's pairs, the LoRA-wrapped backbone and the pair rows, ready to `train()`."""
    import datasets
    from transformers import set_seed

    from affectreason.train.artifacts import checkpoint_callback
    from affectreason.train.collator import MultimodalCollator
    from affectreason.train.sft import load_training_backbone

    if not recipe.data.path:
        raise AffectReasonError("the recipe has no data.path: pass data.path=pairs.jsonl")
    set_seed(recipe.args.seed)
    rows = read_pairs(recipe.data.path)
    eval_rows = read_pairs(recipe.data.eval_path) if recipe.data.eval_path else []
    backbone = load_training_backbone(recipe)  # with model.adapter, trl keeps a frozen copy as the reference
    args = recipe.trainer_args()
    collator = MultimodalCollator(backbone, recipe.data, max_length=args.max_length)
    trainer = _dpo_trainer_class()(
        model=backbone.model,
        args=args,
        train_dataset=datasets.Dataset.from_list(rows),
        eval_dataset=datasets.Dataset.from_list(eval_rows) if eval_rows else None,
        data_collator=PreferenceCollator(collator),
        processing_class=backbone.tokenizer,
        callbacks=[checkpoint_callback(recipe)],
    )
    if eval_rows:  # EW-F1, hit rate and parse rate beside the eval loss; the chosen answer is the reference
        from affectreason.train.data import CaptionExample
        from affectreason.train.eval_callback import EmotionEvalCallback

        examples = [
            CaptionExample(
                id=r["id"],
                row=n,
                video=r["video"],
                audio=r["audio"],
                caption=r["chosen"],
                subtitle=r["subtitle"],
            )
            for n, r in enumerate(eval_rows, 1)
        ]
        EmotionEvalCallback.attach(trainer, backbone, examples, recipe.data, collator.prompt)
    return trainer, backbone, rows


def train_dpo(recipe: Recipe) -> Path:
    """Run DPO from a recipe; returns the output folder with the adapter, model card and manifest."""
    from affectreason.train.artifacts import resume_checkpoint, save_artifacts

    checkpoint = resume_checkpoint(recipe)
    trainer, backbone, rows = build_dpo_trainer(recipe)
    result = trainer.train(resume_from_checkpoint=checkpoint)
    data = {"pairs": len(rows), "with_subtitle": sum(1 for r in rows if r["subtitle"])}
    return save_artifacts(trainer, backbone, recipe, data, dict(result.metrics))
