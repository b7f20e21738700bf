"""The package's shape: the light layer imports with torch blocked, no import circles, no borrowed private names."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import affectreason

PACKAGE = Path(affectreason.__file__).resolve().parent

# The light layer: importable (and usable) without torch or any model runtime.
LIGHT = (
    "media",
    "rationale",
    "request",
    "decoding",
    "taxonomy",
    "metrics",
    "embedding",
    "minilm",
    "bench.adapters",
    "bench.suites",
    "bench.emobench_m",
    "bench.mme_emotion",
    "evidence",
    "cue_lexicon",
    "acoustics",
    "verify",
    "scoring",
    "errors",
    "paths",
    "prompts",
    "boundedyaml",
    "families",
)
HEAVY = ("backbones", "engines", "train", "serve", "describe")
RUNTIMES = ("torch", "transformers", "sentence_transformers", "vllm", "trl", "peft", "accelerate", "openai")


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = ["affectreason", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _within(module: str, names: tuple[str, ...]) -> bool:
    return any(module == f"affectreason.{n}" or module.startswith(f"affectreason.{n}.") for n in names)


def _imports(module: str, path: Path) -> list[tuple[int, str]]:
    """Every module an import statement names (anywhere in the file, function bodies and TYPE_CHECKING included),
    as (line, module); `from package import submodule` names the submodule too."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{a.name}") for a in node.names if f"{base}.{a.name}" in MODULES]
    return found


def test_light_layer_imports_with_torch_blocked():
    """Every light module imports in a fresh interpreter where importing torch (or any model runtime) raises."""
    light = sorted(m for m in MODULES if _within(m, LIGHT))
    script = (
        "import importlib, sys\n"
        f"BLOCKED = {RUNTIMES!r}\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ImportError(f'light layer imported {name}')\n"
        "        return None\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for name in {light!r}:\n"
        "    importlib.import_module(name)\n"
        "print('OK', len([m for m in sys.modules if m.startswith('affectreason')]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK")


def test_light_layer_never_imports_the_heavy_layer():
    """No light module names a heavy module or an HTTP/model client, not even lazily inside a function; the one
    exception is `decoding.to_hf`, which builds a transformers GenerationConfig for the HF engine."""
    allowed = {("affectreason.decoding", "transformers")}
    bad = []
    for module, path in MODULES.items():
        if not _within(module, LIGHT):
            continue
        for line, name in _imports(module, path):
            heavy = _within(name, HEAVY) or name.split(".")[0] in RUNTIMES
            if heavy and (module, name.split(".")[0]) not in allowed:
                bad.append(f"{module}:{line} imports {name}")
    assert not bad, bad


def test_no_import_circles():
    """The import graph between affectreason modules has no cycle. Imports inside functions and under
    TYPE_CHECKING count too: a lazy import hides a circle from Python, not from a reader."""
    graph = {
        module: {name for _, name in _imports(module, path) if name in MODULES and name != module}
        for module, path in MODULES.items()
    }
    # a package's __init__ runs before its submodules, so an edge into a package's own child is not a circle
    for module in graph:
        graph[module] = {d for d in graph[module] if not module.startswith(d + ".")}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for dep in graph[node]:
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for node in graph:
        if node not in index:
            visit(node)
    assert not circles, circles


def test_no_module_imports_another_modules_private_names():
    bad = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (
                node.level or (node.module or "").startswith("affectreason")
            ):
                bad += [
                    f"{module} imports {node.module}.{a.name}"
                    for a in node.names
                    if a.name[:1] == "_" and a.name[:2] != "__"
                ]
    assert not bad, bad


def test_no_module_over_400_lines():
    """One job per module keeps each one readable in a sitting."""
    long = {m: n for m, path in MODULES.items() if (n := len(path.read_text().splitlines())) > 400}
    assert not long, long


def test_the_heavy_layer_imports_downward():
    """backbones < engines < describe < train / serve / bench < commands: a package never imports one above it
    (an engine does not reach into the server or the trainer; a backbone knows no engine)."""
    above = {
        "backbones": ("engines", "describe", "train", "serve", "bench", "commands"),
        "engines": ("describe", "train", "serve", "bench", "commands"),
        "describe": ("train", "serve", "bench", "commands"),
        "train": ("serve", "bench", "commands"),
        "serve": ("train", "bench", "commands"),
    }
    bad = [
        f"{module}:{line} imports {name}"
        for module, path in MODULES.items()
        for package, higher in above.items()
        if _within(module, (package,))
        for line, name in _imports(module, path)
        if _within(name, higher)
    ]
    assert not bad, bad


def test_no_function_body_over_60_lines():
    """A function reads in one screen. The signature is not counted: a CLI command's typed options are its help."""
    long = []
    for module, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = (
                    node.body[1:] if ast.get_docstring(node) is not None and len(node.body) > 1 else node.body
                )
                lines = node.end_lineno - body[0].lineno + 1
                if lines > 60:
                    long.append(f"{module}.{node.name}: {lines}")
    assert not long, long
