"""`load_backbone`: config → family registry → model class + processor, with dtype, 4/8-bit and a peft adapter.

Every failure a user can cause (offline hub id, a folder that is not a checkpoint, an unsupported model
type, an adapter that is missing or made for another base model) is one `ModelLoadError` line.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from affectreason.backbones.base import Backbone, backbone_class_for
from affectreason.errors import AffectReasonError, ModelLoadError
from affectreason.families import quantization_refusal

if TYPE_CHECKING:
    import torch

_DTYPES = {"bf16": "bfloat16", "bfloat16": "bfloat16", "fp16": "float16", "float16": "float16"}
_DTYPES.update({"fp32": "float32", "float32": "float32", "auto": "auto"})


def dtype_name(dtype: str) -> str:
    """The torch / vLLM name of a `--dtype` value (`bf16` -> `bfloat16`; `auto` stays `auto`)."""
    if dtype not in _DTYPES:
        raise AffectReasonError(f"unknown dtype '{dtype}': choose auto, bf16, fp16 or fp32")
    return _DTYPES[dtype]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP check, so an offline machine fails in milliseconds instead of retrying for half a minute."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}:
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def download_command() -> str:
    """The download command of the installed huggingface_hub (`hf`; `huggingface-cli` before 0.34)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        scripts = {
            e.name for e in distribution("huggingface_hub").entry_points if e.group == "console_scripts"
        }
    except PackageNotFoundError:
        scripts = set()
    return (
        "huggingface-cli download" if "huggingface-cli" in scripts and "hf" not in scripts else "hf download"
    )


def _offline_error(model: str) -> ModelLoadError:
    return ModelLoadError(
        f"model '{model}' is not available offline: download it with `{download_command()} {model}` "
        "or pass --model PATH to a local checkpoint"
    )


def _load_config(model: str, trust_remote_code: bool) -> tuple[Any, bool]:
    """The model's config and whether it must be read from local files only."""
    from transformers import AutoConfig

    path = Path(model).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"'{model}' is not a model checkpoint: no config.json in it")
        try:
            return AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code), True
        except (OSError, ValueError, KeyError) as exc:
            raise ModelLoadError(f"'{model}' is not a readable checkpoint: {_first_line(exc)}") from exc
    if model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise ModelLoadError(f"'{model}' does not exist")
    try:
        return AutoConfig.from_pretrained(
            model, local_files_only=True, trust_remote_code=trust_remote_code
        ), True
    except OSError:
        pass
    except ValueError as exc:
        raise ModelLoadError(f"'{model}': {_first_line(exc)}") from exc
    if not _hub_reachable():
        raise _offline_error(model)
    try:
        return AutoConfig.from_pretrained(model, trust_remote_code=trust_remote_code), False
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load model '{model}': {_first_line(exc)}") from exc


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """`auto`: bf16 on a CUDA device that supports it, fp32 otherwise."""
    import torch

    if dtype == "auto":
        if device.startswith("cuda") and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, dtype_name(dtype))


def _quantization_config(quantization: str | None, cls: type[Backbone], dtype: torch.dtype) -> Any:
    if quantization is None:
        return None
    if quantization not in {"4bit", "8bit"}:
        raise AffectReasonError(f"unknown quantization '{quantization}': choose 4bit or 8bit")
    refusal = next(filter(None, (quantization_refusal(kind, quantization) for kind in cls.model_types)), None)
    if refusal:
        raise AffectReasonError(refusal)
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise ModelLoadError(f"{quantization} loading needs bitsandbytes: pip install bitsandbytes") from exc
    from transformers import BitsAndBytesConfig

    # Towers and the output head stay in full precision (names match from the start of the module path).
    skip = [*cls.tower_paths.values(), "lm_head"]
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skip)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=dtype,
        llm_int8_skip_modules=skip,
    )


def text_signature(config: Any) -> tuple[str, int]:
    """(family, language-model hidden size): what an adapter and its base must agree on."""
    thinker = getattr(config, "thinker_config", None)
    text = (thinker or config).get_text_config()
    return backbone_class_for(config.model_type).family, int(text.hidden_size)


def _check_adapter(adapter: str, model: str, config: Any) -> None:
    from peft import PeftConfig

    path = Path(adapter).expanduser()
    if not path.is_dir():
        raise ModelLoadError(f"adapter '{adapter}' does not exist")
    if not (path / "adapter_config.json").is_file():
        raise ModelLoadError(f"'{adapter}' is not a peft adapter: no adapter_config.json in it")
    try:
        base_name = PeftConfig.from_pretrained(path).base_model_name_or_path
    except (OSError, ValueError, TypeError) as exc:
        raise ModelLoadError(f"'{adapter}' is not a readable peft adapter: {_first_line(exc)}") from exc
    if not base_name:
        return
    try:
        base_config, _ = _load_config(base_name, trust_remote_code=False)
    except ModelLoadError:
        return  # the base it names is not on this machine: the weight shapes are checked on load
    if text_signature(base_config) != text_signature(config):
        family, hidden = text_signature(base_config)
        want_family, want_hidden = text_signature(config)
        raise ModelLoadError(
            f"adapter '{adapter}' was trained for '{base_name}' ({family}, hidden size {hidden}), "
            f"not for '{model}' ({want_family}, hidden size {want_hidden})"
        )


def load_backbone(
    model: str,
    *,
    adapter: str | None = None,
    dtype: str = "auto",
    quantization: str | None = None,
    device: str | None = None,
    trust_remote_code: bool = False,
    load_model: bool = True,
) -> Backbone:
    """Load a checkpoint (hub id or local path) as its Backbone family.

    `load_model=False` loads only the processor (for engines that hold the weights elsewhere, e.g. vLLM).
    """
    import torch
    import transformers
    from transformers import AutoProcessor

    config, local = _load_config(model, trust_remote_code)
    cls = backbone_class_for(config.model_type)
    source = str(Path(model).expanduser()) if Path(model).expanduser().exists() else model
    common = {"local_files_only": local, "trust_remote_code": trust_remote_code}
    try:
        processor = AutoProcessor.from_pretrained(source, **common)
    except (OSError, ValueError, TypeError) as exc:
        raise ModelLoadError(f"cannot load the processor of '{model}': {_first_line(exc)}") from exc
    if not load_model:
        return cls(None, processor, model_id=model, adapter=adapter)
    if adapter:
        _check_adapter(adapter, model, config)

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    torch_dtype = resolve_dtype(dtype, device)
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "device_map": device, **common}
    if config.model_type == getattr(cls, "thinker_of", None):
        # A full omni checkpoint (thinker + talker): load the thinker's weights only.
        kwargs.update(config=config.thinker_config, key_mapping={r"^thinker\.": ""})
    quant = _quantization_config(quantization, cls, torch_dtype)
    if quant is not None:
        kwargs["quantization_config"] = quant
    try:
        loaded = getattr(transformers, cls.model_class).from_pretrained(source, **kwargs)
    except OSError as exc:
        if not local:
            raise ModelLoadError(f"cannot download '{model}': {_first_line(exc)}") from exc
        raise (_offline_error(model) if source == model else ModelLoadError(_first_line(exc))) from exc
    except (ValueError, RuntimeError) as exc:
        raise ModelLoadError(f"cannot load '{model}': {_first_line(exc)}") from exc

    if adapter:
        from peft import PeftModel

        try:
            loaded = PeftModel.from_pretrained(loaded, str(Path(adapter).expanduser()))
        except (RuntimeError, ValueError, KeyError, OSError) as exc:
            raise ModelLoadError(f"adapter '{adapter}' does not fit '{model}': {_first_line(exc)}") from exc
    loaded.eval()
    return cls(loaded, processor, model_id=model, adapter=adapter)
