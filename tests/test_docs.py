"""Documentation checks: notebooks are stripped and use the public API; METHODOLOGY.md covers
every baseline and metric. Fast: nothing is executed (CI runs notebooks/run_notebooks.py)."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest

nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
METHODOLOGY = ROOT / "METHODOLOGY.md"
EXPECTED = ("01_explore.ipynb", "02_train_and_evaluate.ipynb", "03_plan_and_audit.ipynb")


def _code(nb) -> str:
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "code")


def _read(path: Path):
    return nbformat.read(path, as_version=nbformat.NO_CONVERT)


def test_expected_notebooks_exist():
    names = {p.name for p in NOTEBOOKS}
    assert set(EXPECTED) <= names, f"missing notebooks: {set(EXPECTED) - names}"
    assert (ROOT / "notebooks" / "run_notebooks.py").is_file()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_valid_v4(path):
    nb = _read(path)
    assert nb.nbformat == 4
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stripped(path):
    nb = _read(path)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        assert cell.get("outputs") == [], f"cell {i} has outputs: strip them before committing"
        assert cell.get("execution_count") is None, f"cell {i} has an execution count"
        assert "execution" not in cell.get("metadata", {}), f"cell {i} has execution timings"


def _riskmodel_imports(tree: ast.AST) -> list[tuple[str, list[str]]]:
    """(module, imported names) for every import of riskmodel."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "riskmodel":
                    found.append((alias.name, []))
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] == "riskmodel":
                found.append((node.module, [a.name for a in node.names]))
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_uses_public_api_only(path):
    code = _code(_read(path))
    # Shell escapes and magics are not Python; the notebooks should not need them.
    assert not re.search(r"^\s*[%!]", code, re.M), "IPython magics or shell escapes in cells"
    tree = ast.parse(code)
    imports = _riskmodel_imports(tree)
    assert imports, "the notebook does not use riskmodel"
    for module, names in imports:
        parts = module.split(".")
        assert not any(p.startswith("_") for p in parts), f"private module {module}"
        assert importlib.util.find_spec(module) is not None, f"no module {module}"
        private = [n for n in names if n.startswith("_")]
        assert not private, f"private names {private} imported from {module}"
        if len(parts) == 1:  # 'from riskmodel import x' must name a public submodule
            for n in names:
                assert importlib.util.find_spec(f"riskmodel.{n}") is not None, n
    # No attribute access into private parts either (e.g. riskmodel.io.read.core, bundle._x).
    assert not re.search(r"\briskmodel(?:\.\w+)*\._\w", code), "private riskmodel attribute"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_size_is_parameterised(path):
    code = _code(_read(path))
    assert "RISKMODEL_NB_SCALE" in code, "the size must be set by RISKMODEL_NB_SCALE"


def test_notebooks_readme_lists_every_notebook():
    text = (ROOT / "notebooks" / "README.md").read_text(encoding="utf-8")
    for p in NOTEBOOKS:
        assert p.name in text, f"notebooks/README.md does not mention {p.name}"
    assert "run_notebooks.py" in text


# -------------------------------------------------------------------------- METHODOLOGY.md


@pytest.fixture(scope="module")
def methodology() -> str:
    assert METHODOLOGY.is_file(), "METHODOLOGY.md is missing"
    text = METHODOLOGY.read_text(encoding="utf-8")
    # Markdown escapes and line wrapping do not matter: "PEI\\*" is PEI*, words may wrap.
    return " ".join(text.replace("\\", "").split())


def test_methodology_mentions_every_baseline(methodology):
    from riskmodel.evaluation.baselines import BASELINES

    for name in BASELINES:  # the names used in reports and tables
        assert f"`{name}`" in methodology, f"baseline `{name}` not described"
    for words in ("Bowers", "Johnson", "ETAS", "KDE", "oracle"):
        assert words in methodology, words


def test_methodology_mentions_every_metric(methodology):
    from riskmodel.evaluation.metrics import compare

    # The metric columns of the comparison table from a tiny run: new metrics must be documented.
    rng = np.random.default_rng(0)
    pred = rng.random((4, 6))
    actual = rng.poisson(1.0, (4, 6)).astype(float)
    table = compare({"model": pred, "oracle": pred}, actual, np.ones(6))
    bases = {re.sub(r"_\d+$", "", c) for c in table.columns if c != "role"}
    for b in sorted(bases):
        assert f"`{b}" in methodology, f"metric `{b}` not described"
    for words in (
        "HR(c)",
        "PAI",
        "PEI*",
        "oracle ratio",
        "gap closed",
        "Poisson deviance",
        "Brier",
        "calibration",
    ):
        assert words.lower() in methodology.lower(), words


def test_methodology_mentions_legal_basis_and_governance(methodology):
    for words in (
        "art. 23",
        "C-9/16",
        "C-278/12",
        "ORIGAMI",
        "exploration floor",
        "systematic sampling",
        "entropy",
        "hash chain",
        "monotone",
        "effort-neutral",
        "manifest",
        "MODEL_CARD.md",
        "RISKMODEL_SIGNING_KEY",
        "PROVENANCE.md",
    ):
        assert words in methodology, words


def test_methodology_feature_sections_match_spec(methodology):
    from riskmodel.features import FeatureSpec

    spec = FeatureSpec.load()
    for section in ("history", "route", "time", "effort"):
        assert spec.enabled(section)
        assert f"[{section}]" in methodology, f"feature section [{section}] not described"


def test_changelog_has_current_version():
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "Keep a Changelog" in text
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert version is not None
    assert f"[{version.group(1)}]" in text or "[Unreleased]" in text
