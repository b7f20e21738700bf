"""YAML read with bounds: alias expansion ("billion laughs"), nesting and size are checked before anything is built.

PyYAML composes aliases as shared nodes, so composing is cheap; only constructing the Python objects expands
them. The node graph's expanded size is counted first (memoised per node, so the count itself costs the number
of distinct nodes) and a document that grows past a small multiple of its own node count is refused.
"""

from __future__ import annotations

from typing import Any

from affectreason.errors import AffectReasonError

MAX_CHARS = 1_000_000
MAX_DEPTH = 64
EXPANSION = 10  # an alias may repeat a part of the document, not multiply it
MIN_BUDGET = 10_000


def _expanded_size(root: Any) -> tuple[int, int]:
    """(expanded node count, distinct node count) of a composed node graph; refuses cycles and deep nesting."""
    import yaml

    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: Any, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise AffectReasonError("a YAML alias refers to itself")
        if depth > MAX_DEPTH:
            raise AffectReasonError(f"YAML nested deeper than {MAX_DEPTH} levels")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        active.discard(key)
        sizes[key] = total
        return total

    return size(root, 0), len(sizes)


def load_yaml(text: str, source: str = "YAML") -> Any:
    """`yaml.safe_load` for untrusted text, refusing oversized input, alias bombs, cycles and deep nesting."""
    import yaml

    if len(text) > MAX_CHARS:
        raise AffectReasonError(f"{source} is larger than {MAX_CHARS} characters")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        expanded, distinct = _expanded_size(node)
        if expanded > max(MIN_BUDGET, EXPANSION * distinct):
            raise AffectReasonError(
                f"{source}: aliases expand {distinct} YAML nodes into {expanded}; refused (alias bomb?)"
            )
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise AffectReasonError(f"{source} is not valid YAML: {str(exc).splitlines()[0]}") from None
    except RecursionError:
        raise AffectReasonError(f"{source}: YAML nested too deeply") from None
    finally:
        loader.dispose()
