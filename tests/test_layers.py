"""The package is layered: a module imports only its own layer or lower ones (README "Layout").

Every import is checked, including those inside functions (lazy imports are still dependencies).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "riskmodel"

# Low -> high. The package root (``riskmodel/__init__.py``: version only) is below everything.
LAYERS: dict[str, int] = {
    "riskmodel": 0,
    "riskmodel._vendor": 0,
    "riskmodel.errors": 1,
    "riskmodel.config": 1,
    "riskmodel.files": 1,
    "riskmodel.io": 2,
    "riskmodel.geo": 3,
    "riskmodel.features": 4,
    "riskmodel.model": 5,
    "riskmodel.scoring": 6,
    "riskmodel.evaluation": 7,
    "riskmodel.planning": 8,
    "riskmodel.audit": 9,
    "riskmodel.sim": 10,
    "riskmodel.api": 11,
    "riskmodel.demo": 11,
    "riskmodel.cli": 12,
    "riskmodel.__main__": 12,
}


def layer_of(module: str) -> int:
    """Layer of a ``riskmodel`` module: the longest prefix in :data:`LAYERS`."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n])
        if key in LAYERS:
            return LAYERS[key]
    raise KeyError(f"{module} is in no layer: add its package to LAYERS and the README")


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {
    module_name(p): p
    for p in sorted(PACKAGE.rglob("*.py"))
    if "_vendor" not in p.relative_to(PACKAGE).parts
}


def imports_of(name: str, path: Path) -> set[str]:
    """Every ``riskmodel`` module imported anywhere in a file (relative imports resolved)."""
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_pkg else 0)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            for a in node.names:  # `from riskmodel.x import y` where y is a module
                if f"{module}.{a.name}" in MODULES:
                    found.add(f"{module}.{a.name}")
    return {m for m in found if m == "riskmodel" or m.startswith("riskmodel.")}


def test_every_module_has_a_layer():
    for name in MODULES:
        layer_of(name)


@functools.cache
def _violations() -> list[tuple[str, str]]:
    out = []
    for name, path in MODULES.items():
        mine = layer_of(name)
        for imported in sorted(imports_of(name, path)):
            if layer_of(imported) > mine:
                out.append((name, imported))
    return out


def test_no_module_imports_a_higher_layer():
    bad = _violations()
    assert not bad, "imports of a higher layer:\n" + "\n".join(
        f"  {a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})" for a, b in bad
    )
