"""Versioned prompt templates from `prompts/`: a small header (name, version, format) above `---`, then the text."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from affectreason.errors import AffectReasonError
from affectreason.paths import prompts_dir


@dataclass(frozen=True)
class Prompt:
    name: str
    version: str
    text: str

    @property
    def id(self) -> str:
        """`name@version`, recorded with every prediction."""
        return f"{self.name}@{self.version}"

    @property
    def fields(self) -> set[str]:
        """The `{name}` placeholders in the text, filled per sample by `fill`."""
        return set(_FIELD.findall(self.text))

    def fill(self, values: dict[str, str]) -> Prompt:
        """The prompt with each `{name}` found in `values` replaced (other braces are left as they are)."""
        text = _FIELD.sub(
            lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), self.text
        )
        return replace(self, text=text)


_FIELD = re.compile(r"\{(\w+)\}")


def available_prompts() -> list[str]:
    return sorted(p.stem for p in prompts_dir().glob("*.txt"))


@lru_cache(maxsize=64)
def load_prompt(name_or_path: str) -> Prompt:
    """A packaged prompt by name (`describe`) or a prompt file by path (same header format, or plain text)."""
    path = Path(name_or_path)
    if not path.is_file():
        path = prompts_dir() / f"{name_or_path}.txt"
    if not path.is_file():
        raise AffectReasonError(
            f"unknown prompt '{name_or_path}': choose one of {', '.join(available_prompts())} or pass a file"
        )
    content = path.read_text(encoding="utf-8")
    header, sep, body = content.partition("\n---\n")
    if not sep:
        return Prompt(name=path.stem, version="custom", text=content.strip())
    fields = dict(line.split(":", 1) for line in header.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    return Prompt(name=fields.get("name", path.stem), version=fields.get("version", "0"), text=body.strip())
