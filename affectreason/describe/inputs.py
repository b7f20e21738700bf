"""Which clips to describe (files and folders to stable, unique ids) and decoding them ahead of the model."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from affectreason.errors import AffectReasonError
from affectreason.media import is_media_file


def iter_media_paths(inputs: Iterable[str | Path]) -> list[Path]:
    """Expand files and folders (sorted, media files only) into the list of clips to describe."""
    return [path for path, _ in media_ids(inputs)]


def media_ids(inputs: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """Each clip to describe with its id: the path relative to the input folder it was found in (a file given
    by name: its stem), without the suffix. Ids that would still clash (`a/clip.mp4` and `b/clip.mp4` given as
    files) become the paths relative to the clashing files' common folder, so every id is unique and stable."""
    found: dict[Path, str] = {}
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and is_media_file(p))
            if not files:
                raise AffectReasonError(f"no media files found in folder '{path}'")
            for file in files:
                found.setdefault(file, file.relative_to(path).with_suffix("").as_posix())
        else:
            found.setdefault(path, path.stem)
    by_id: dict[str, list[Path]] = {}
    for path, clip_id in found.items():
        by_id.setdefault(clip_id, []).append(path)
    for clashing in (paths for paths in by_id.values() if len(paths) > 1):
        absolute = [p.resolve() for p in clashing]
        if len({a.with_suffix("") for a in absolute}) == 1:  # clip.mp4 beside clip.wav: keep the suffix
            found.update({p: found[p] + p.suffix for p in clashing})
            continue
        common = Path(os.path.commonpath(absolute))
        relative = [a.relative_to(common) for a in absolute]
        stems = [r.with_suffix("").as_posix() for r in relative]
        unique = len(set(stems)) == len(stems)
        found.update({p: stem if unique else r.as_posix() for p, r, stem in zip(clashing, relative, stems)})
    return list(found.items())


def prefetch(items: list[Any], load: Callable[[Any], Any], ahead: int = 4) -> Iterator[tuple[Any, Any]]:
    """Yield `(item, load(item) or exception)` in order, decoding up to `ahead` items in a background thread
    while the caller generates, so media decoding overlaps with the model."""

    def safe(item: Any) -> Any:
        try:
            return load(item)
        except AffectReasonError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=1) as pool:
        futures = [pool.submit(safe, item) for item in items[:ahead]]
        for index, item in enumerate(items):
            if index + ahead < len(items):
                futures.append(pool.submit(safe, items[index + ahead]))
            yield item, futures[index].result()
