"""Fine-tuning: recipes (`config`), caption data (`data`), the shared multimodal collator, LoRA, SFT, artifacts, merge.

Light modules (`config`, `data`) import no torch; the rest import it lazily inside functions.
"""
