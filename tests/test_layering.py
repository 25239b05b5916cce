"""The package's import graph: no cycles, and every folder imports only the layers below it.

Read from the source with `ast` (imports inside functions count too: a deferred import that closes a
cycle is still a cycle a reader has to untangle). The layers, bottom to top:

    base       uvd (the package), schema, config, hashing, registry, devices   (no Beam, no torch models)
    transforms pure numpy pixel work
    tokenize   the VQGAN (its Beam stage and decode CLI may use core)
    model      the trainer: base + tokenize only, never Beam / OpenCV / renderers
    core       Beam plumbing shared by every stage
    annotated  the annotated-record core (records, rendering, sentences, pooling)
    sources    one package per source stage
    quality    near-duplicates, decontamination, learnability, sequence checks (run by assembly)
    viewer     reads what a build wrote (the build writes it last)
    assembly   manifest -> sources -> tokens -> shards, card, preview
    cli        the entry point; nothing imports it
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "uvd"
BASE = {"uvd", "uvd.schema", "uvd.config", "uvd.hashing", "uvd.registry", "uvd.devices"}

# layer -> layers it may import (besides itself and BASE)
ALLOWED = {
    "transforms": set(),
    "tokenize": {"transforms"},
    "model": {"tokenize"},
    "core": {"transforms"},
    "annotated": {"transforms", "core"},
    "sources": {"transforms", "core", "annotated", "tokenize"},
    "quality": {"transforms", "core", "tokenize"},
    "viewer": {"transforms", "core", "tokenize"},
    "assembly": {"transforms", "core", "annotated", "sources", "tokenize", "quality", "viewer"},
    "sample": {"transforms"},
    "cli": {"core"},
}
# Modules of a lower layer that are Beam stages of their own and may use the plumbing.
STAGE_MODULES = {"uvd.tokenize.stage": {"core"}, "uvd.tokenize.detokenize": {"core"}}
# A source stage reusing another's transforms: hf adapts hub datasets to imagenet's and video's classes.
CROSS_SOURCE = {("hf", "imagenet"), ("hf", "video")}
# Third-party packages the trainer must never load (the user's rule: uvd.model runs without them).
NOT_IN_MODEL = {"apache_beam", "cv2", "pyrender", "trimesh", "OpenGL", "decord", "av", "mmpose"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, absolute names (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        edges[name] = {m for m in imports_of(path) if m in modules and m != name}
    return edges


def layer(module: str) -> str:
    if module in BASE:
        return "base"
    return module.split(".")[1]


GRAPH = graph()


def test_the_graph_sees_the_package():
    assert len(GRAPH) > 50 and "uvd.core.outputs" in GRAPH["uvd.sources.laion.pipeline"]


def test_no_import_cycles():
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)


def test_every_layer_imports_only_what_it_may():
    bad = []
    for module, targets in sorted(GRAPH.items()):
        here = layer(module)
        for target in sorted(targets):
            there = layer(target)
            if there in ("base", here):
                if here == there == "sources" and module.split(".")[2] != target.split(".")[2]:
                    if (module.split(".")[2], target.split(".")[2]) not in CROSS_SOURCE:
                        bad.append(f"{module} -> {target} (one source stage using another)")
                continue
            allowed = ALLOWED.get(here, set()) | STAGE_MODULES.get(module, set())
            if here == "base" or there not in allowed:
                bad.append(f"{module} -> {target} ({here} may not import {there})")
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_nothing_imports_the_cli():
    assert not [m for m, targets in GRAPH.items() if "uvd.cli" in targets]


def test_the_trainer_never_imports_beam_opencv_or_renderers():
    found = []
    for path in (PACKAGE / "model").rglob("*.py"):
        for name in imports_of(path):
            if name.split(".")[0] in NOT_IN_MODEL:
                found.append(f"{module_name(path)} imports {name}")
    assert not found, found
