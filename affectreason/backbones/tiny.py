"""Tiny random-weight checkpoints of every backbone family, built from the real config classes shrunk down.

Each checkpoint is a real model + a locally trained byte-level BPE tokenizer wrapped in the real tokenizer
class + the real processor, saved with `save_pretrained`, so `load_backbone(out_dir)` loads it through the
same code path as a hub checkpoint. Used by tests, examples and `affectreason tiny-model`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from affectreason.errors import AffectReasonError
from affectreason.paths import prompts_dir
from affectreason.rationale import Rationale, render_canonical

VOCAB_SIZE = 1000

_QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message.role }}\n"
    "{% if message.content is string %}{{ message.content }}{% else %}{% for part in message.content %}"
    "{% if part.type == 'video' %}{VIDEO}{% elif part.type == 'audio' %}{AUDIO}"
    "{% elif part.type == 'image' %}{IMAGE}{% elif part.type == 'text' %}{{ part.text }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_BASE_TEXT = """You are an expert in affective computing. Watch the video, listen to the audio and read the
transcript, then describe the visual, acoustic and lexical emotion cues, reason step by step, and name the
emotions in order of salience with valence, arousal and confidence. The speaker frowns, raises the voice,
speaks quickly with long pauses, smiles, laughs, sighs, cries, shouts, whispers, trembles, looks away.
Transcript: "I can't believe you did this to me, I am so happy and surprised, thank you!"
Loudness is moderate, pitch is high and rising, the pace is fast, there are two short pauses.
"""


def _examples() -> list[str]:
    samples = [
        Rationale(
            emotions=["happy", "surprised", "excited"],
            visual_cues=["wide smile", "raised eyebrows"],
            acoustic_cues=["high pitch", "fast pace"],
            lexical_cues=["thank you"],
            reasoning="The smile and the bright voice show joy at an unexpected gift.",
            valence=0.8,
            arousal=0.7,
            confidence=0.9,
        ),
        Rationale(
            emotions=["angry", "frustrated", "sad", "worried", "fearful", "disgusted", "neutral", "calm"],
            visual_cues=["frown", "clenched jaw", "tears"],
            acoustic_cues=["loud voice", "trembling", "long pauses"],
            lexical_cues=["I can't believe"],
            reasoning="The frown and the loud trembling voice point to anger mixed with sadness.",
            valence=-0.6,
            arousal=0.8,
            confidence=0.6,
        ),
    ]
    return [render_canonical(r) for r in samples]


def _corpus() -> list[str]:
    prompts = [p.read_text(encoding="utf-8") for p in sorted(prompts_dir().glob("*.txt"))]
    return [_BASE_TEXT, *_examples(), *prompts] * 3


def _tokenizer(special_tokens: dict[str, str], extra: list[str], chat_template: str):
    """A byte-level BPE trained on the built-in corpus, wrapped in the real `Qwen2Tokenizer`."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    named = {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    specials = list(dict.fromkeys([*named.values(), "<|im_start|>", *special_tokens.values(), *extra]))
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = Qwen2Tokenizer().backend_tokenizer.pre_tokenizer  # the exact split the wrapper uses
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(), trainer=trainer)
    model = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    tokenizer = Qwen2Tokenizer(
        vocab=model["vocab"],
        merges=merges,
        extra_special_tokens=special_tokens,
        **named,
    )
    tokenizer.chat_template = chat_template
    return tokenizer


def _ids(tokenizer, names: dict[str, str]) -> dict[str, int]:
    return {key: tokenizer.convert_tokens_to_ids(token) for key, token in names.items()}


def _text_config(tokenizer, **extra) -> dict:
    """A 2-layer language model; head_dim 16 so the M-RoPE sections (sum = head_dim / 2) fit."""
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "pad_token_id": tokenizer.pad_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "bos_token_id": None,
        "tie_word_embeddings": False,
        **extra,
    }


_QWEN_VISION = {"patch_size": 4, "spatial_merge_size": 2, "temporal_patch_size": 2}


def _qwen_media_processors(merge_size: int = 2):
    from transformers import Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    sizes = {"size": {"shortest_edge": 8 * 8 * 4, "longest_edge": 64 * 64 * 4}}
    kwargs = {"patch_size": _QWEN_VISION["patch_size"], "merge_size": merge_size, "temporal_patch_size": 2}
    return Qwen2VLImageProcessor(**kwargs, **sizes), Qwen2VLVideoProcessor(**kwargs, **sizes)


def _tiny_audio(hidden: int, **extra) -> dict:
    """A one-layer Whisper-style audio tower config projecting to the language model's width."""
    return {
        "num_mel_bins": 128,
        "encoder_layers": 1,
        "encoder_attention_heads": 2,
        "encoder_ffn_dim": 64,
        "d_model": 32,
        "output_dim": hidden,
        **extra,
    }


def _omni_tokenizer(tokens: dict[str, str]):
    """The tokenizer, its media token ids and chat template of an omni family, from its media token names."""
    template = (
        _QWEN_CHAT_TEMPLATE.replace(
            "{VIDEO}", tokens["vision_bos_token"] + tokens["video_token"] + tokens["vision_eos_token"]
        )
        .replace("{AUDIO}", tokens["audio_bos_token"] + tokens["audio_token"] + tokens["audio_eos_token"])
        .replace("{IMAGE}", tokens["vision_bos_token"] + tokens["image_token"] + tokens["vision_eos_token"])
    )
    tokenizer = _tokenizer(tokens, [], template)
    return tokenizer, _ids(tokenizer, tokens), template


def _omni_processor(processor_class, tokenizer, template: str):
    from transformers import WhisperFeatureExtractor

    image_processor, video_processor = _qwen_media_processors()
    return processor_class(
        image_processor=image_processor,
        video_processor=video_processor,
        feature_extractor=WhisperFeatureExtractor(feature_size=128),
        tokenizer=tokenizer,
        chat_template=template,
    )


def _build_qwen2_5_omni(seed: int):
    from transformers import (
        Qwen2_5OmniProcessor,
        Qwen2_5OmniThinkerConfig,
        Qwen2_5OmniThinkerForConditionalGeneration,
    )

    tokens = {
        "image_token": "<|IMAGE|>",
        "audio_token": "<|AUDIO|>",
        "video_token": "<|VIDEO|>",
        "vision_bos_token": "<|vision_bos|>",
        "vision_eos_token": "<|vision_eos|>",
        "audio_bos_token": "<|audio_bos|>",
        "audio_eos_token": "<|audio_eos|>",
    }
    tokenizer, ids, template = _omni_tokenizer(tokens)
    hidden = 64
    config = Qwen2_5OmniThinkerConfig(
        audio_config=_tiny_audio(hidden, n_window=100, max_source_positions=1500),
        vision_config={
            "depth": 1,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": hidden,
            "window_size": 16,
            "fullatt_block_indexes": [0],
            **_QWEN_VISION,
        },
        text_config=_text_config(
            tokenizer,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        ),
        audio_token_index=ids["audio_token"],
        image_token_index=ids["image_token"],
        video_token_index=ids["video_token"],
        audio_start_token_id=ids["audio_bos_token"],
        audio_end_token_id=ids["audio_eos_token"],
        vision_start_token_id=ids["vision_bos_token"],
        vision_end_token_id=ids["vision_eos_token"],
        user_token_id=int(tokenizer.convert_tokens_to_ids("user")),
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2_5OmniThinkerForConditionalGeneration(config)
    return model, _omni_processor(Qwen2_5OmniProcessor, tokenizer, template)


def _build_qwen3_omni(seed: int):
    from transformers import (
        Qwen3OmniMoeProcessor,
        Qwen3OmniMoeThinkerConfig,
        Qwen3OmniMoeThinkerForConditionalGeneration,
    )

    tokens = {
        "image_token": "<|image_pad|>",
        "audio_token": "<|audio_pad|>",
        "video_token": "<|video_pad|>",
        "vision_bos_token": "<|vision_start|>",
        "vision_eos_token": "<|vision_end|>",
        "audio_bos_token": "<|audio_start|>",
        "audio_eos_token": "<|audio_end|>",
    }
    tokenizer, ids, template = _omni_tokenizer(tokens)
    hidden = 64
    config = Qwen3OmniMoeThinkerConfig(
        audio_config=_tiny_audio(hidden, downsample_hidden_size=16),
        vision_config={
            "depth": 2,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": hidden,
            "num_position_embeddings": 64,
            "deepstack_visual_indexes": [1],
            **_QWEN_VISION,
        },
        text_config=_text_config(
            tokenizer,
            moe_intermediate_size=32,
            num_experts=4,
            num_experts_per_tok=2,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        ),
        audio_token_id=ids["audio_token"],
        image_token_id=ids["image_token"],
        video_token_id=ids["video_token"],
        audio_start_token_id=ids["audio_bos_token"],
        vision_start_token_id=ids["vision_bos_token"],
        user_token_id=int(tokenizer.convert_tokens_to_ids("user")),
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen3OmniMoeThinkerForConditionalGeneration(config)
    return model, _omni_processor(Qwen3OmniMoeProcessor, tokenizer, template)


def _build_qwen2_5_vl(seed: int):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLProcessor

    tokens = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"}
    delimiters = ["<|vision_start|>", "<|vision_end|>"]
    template = (
        _QWEN_CHAT_TEMPLATE.replace("{VIDEO}", "<|vision_start|><|video_pad|><|vision_end|>")
        .replace("{IMAGE}", "<|vision_start|><|image_pad|><|vision_end|>")
        .replace("{AUDIO}", "")
    )
    tokenizer = _tokenizer(tokens, delimiters, template)
    ids = _ids(tokenizer, tokens)
    hidden = 64
    config = Qwen2_5_VLConfig(
        vision_config={
            "depth": 1,
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_heads": 2,
            "out_hidden_size": hidden,
            "window_size": 16,
            "fullatt_block_indexes": [0],
            "tokens_per_second": 2,
            **_QWEN_VISION,
        },
        text_config=_text_config(
            tokenizer,
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        ),
        image_token_id=ids["image_token"],
        video_token_id=ids["video_token"],
        vision_start_token_id=tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        vision_end_token_id=tokenizer.convert_tokens_to_ids("<|vision_end|>"),
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen2_5_VLForConditionalGeneration(config)
    image_processor, video_processor = _qwen_media_processors()
    processor = Qwen2_5_VLProcessor(
        image_processor=image_processor,
        video_processor=video_processor,
        tokenizer=tokenizer,
        chat_template=template,
    )
    return model, processor


_LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message.role.upper() + ': ' }}"
    "{% if message.content is string %}{{ message.content }}{% else %}"
    "{% for part in message.content %}{% if part.type == 'image' %}<image>\n"
    "{% elif part.type == 'video' %}<video>\n{% endif %}{% endfor %}"
    "{% for part in message.content %}{% if part.type == 'text' %}{{ part.text + ' ' }}{% endif %}{% endfor %}"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)


def _build_llava_next_video(seed: int):
    from transformers import (
        LlavaNextImageProcessor,
        LlavaNextVideoConfig,
        LlavaNextVideoForConditionalGeneration,
        LlavaNextVideoProcessor,
        LlavaNextVideoVideoProcessor,
    )

    tokens = {"image_token": "<image>", "video_token": "<video>"}
    tokenizer = _tokenizer(tokens, [], _LLAVA_CHAT_TEMPLATE)
    ids = _ids(tokenizer, tokens)
    image, patch = 32, 8
    config = LlavaNextVideoConfig(
        vision_config={
            "model_type": "clip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": image,
            "patch_size": patch,
            "projection_dim": 32,
        },
        text_config={"model_type": "llama", **_text_config(tokenizer), "head_dim": 16},
        image_token_index=ids["image_token"],
        video_token_index=ids["video_token"],
        image_grid_pinpoints=[[image, image]],
        image_seq_length=(image // patch) ** 2,
        video_seq_length=(image // patch // 2) ** 2,
        vision_feature_layer=-1,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlavaNextVideoForConditionalGeneration(config)
    sizes = {"size": {"shortest_edge": image}, "crop_size": {"height": image, "width": image}}
    processor = LlavaNextVideoProcessor(
        video_processor=LlavaNextVideoVideoProcessor(**sizes),
        image_processor=LlavaNextImageProcessor(**sizes, image_grid_pinpoints=[[image, image]]),
        tokenizer=tokenizer,
        chat_template=_LLAVA_CHAT_TEMPLATE,
        patch_size=patch,
        vision_feature_select_strategy="default",
    )
    return model, processor


_BUILDERS: dict[str, Callable] = {
    "qwen2_5_vl": _build_qwen2_5_vl,
    "llava_next_video": _build_llava_next_video,
    "qwen2_5_omni": _build_qwen2_5_omni,
    "qwen3_omni": _build_qwen3_omni,
}


def tiny_families() -> list[str]:
    """Family names accepted by `build_tiny_checkpoint` and `affectreason tiny-model`."""
    return sorted(_BUILDERS)


def build_tiny_checkpoint(family: str, out_dir: str | Path, seed: int = 0) -> Path:
    """Build and save a tiny random-weight checkpoint of `family` (model, tokenizer, processor) in `out_dir`."""
    if family not in _BUILDERS:
        raise AffectReasonError(f"unknown tiny family '{family}': choose one of {', '.join(tiny_families())}")
    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model, processor = _BUILDERS[family](seed)
    tokenizer = processor.tokenizer
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    processor.save_pretrained(out)
    return out
