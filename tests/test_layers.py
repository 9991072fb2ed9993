"""The package's layers: every import between edgeghost's parts (function-level imports included) points down
the order that README.md's Layout section states, so no two parts import each other."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Source folder -> the package it installs as (pyproject.toml's package-dir).
PACKAGES = {"edgeghost": "edgeghost", "export": "edgeghost.export", "runtime": "edgeghost.runtime"}
# Bottom to top; a part may import only parts on lower rows (README.md, "Layout").
LAYERS = [
    {"errors", "sysinfo"},
    {"fileio"},
    {"data"},
    {"models"},
    {"training"},
    {"runtime"},
    {"export"},
    {"zoo", "bench"},
    {"cli"},
    {"__main__"},
]
RANK = {part: i for i, row in enumerate(LAYERS) for part in row}


def _module(path: Path) -> tuple[str, bool]:
    rel = path.relative_to(ROOT)
    parts = list(rel.with_suffix("").parts[1:])
    is_package = parts[-1:] == ["__init__"]
    return ".".join([PACKAGES[rel.parts[0]], *(parts[:-1] if is_package else parts)]), is_package


def _part(module: str) -> str | None:
    """edgeghost.training.train -> training; the package root itself (edgeghost.__version__) -> None."""
    name = module.split(".")[1] if module.count(".") else None
    return name if name in RANK else None


def import_edges() -> dict[tuple[str, str], set[str]]:
    """(importing part, imported part) -> the files whose imports make that edge."""
    edges: dict[tuple[str, str], set[str]] = {}
    for folder in PACKAGES:
        for path in (ROOT / folder).rglob("*.py"):
            module, is_package = _module(path)
            source = _part(module)
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level:
                    base = module.split(".")[: len(module.split(".")) + is_package - node.level]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                    targets = [prefix] if node.module else [f"{prefix}.{a.name}" for a in node.names]
                elif isinstance(node, ast.ImportFrom):
                    targets = [node.module or ""]
                else:
                    continue
                for target in targets:
                    imported = _part(target) if target.startswith("edgeghost.") else None
                    if source and imported and imported != source:
                        edges.setdefault((source, imported), set()).add(str(path.relative_to(ROOT)))
    return edges


def test_every_part_is_in_a_layer() -> None:
    parts = {p.stem if p.is_file() else p.name for p in (ROOT / "edgeghost").iterdir()
             if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert parts | {"export", "runtime"} == set(RANK)


def test_imports_point_down_the_layers_and_make_no_cycle() -> None:
    edges = import_edges()
    assert ("zoo", "training") in edges and ("cli", "zoo") in edges  # the scan sees function-level imports
    upward = {edge: sorted(files) for edge, files in edges.items() if RANK[edge[0]] <= RANK[edge[1]]}
    assert not upward, f"imports against the layer order: {upward}"


def test_runtime_takes_only_the_checkpoint_format_from_training() -> None:
    """The deploy layer runs on a Pi without the training code: from training it reads checkpoints only."""
    for path in (ROOT / "runtime").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and "training" in node.module.split("."):
                assert node.module.endswith("training.checkpoint"), (path.name, node.module)
