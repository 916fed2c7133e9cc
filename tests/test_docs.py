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


# -------------------------------------------------------------------------- README vs --help


def _cli_commands() -> dict[str, object]:
    """Every command of the CLI by its path ("score", "models list"), groups expanded."""
    import click

    from riskmodel.cli import main

    out: dict[str, object] = {}

    def walk(group: click.Group, prefix: tuple[str, ...]) -> None:
        for name, cmd in group.commands.items():
            if isinstance(cmd, click.Group):
                if cmd.invoke_without_command:  # a group that is a command itself (audit)
                    out[" ".join((*prefix, name))] = cmd
                walk(cmd, (*prefix, name))
            else:
                out[" ".join((*prefix, name))] = cmd

    walk(main, ())
    return out


COMMANDS = _cli_commands()


def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def _section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def _examples() -> dict[str, list[str]]:
    """``riskmodel ...`` snippets of the README by command path (longest path that matches)."""
    found: dict[str, list[str]] = {}
    for snippet in re.findall(r"`riskmodel ([^`]+)`", _readme()):
        words = snippet.split()
        for n in (2, 1):
            path = " ".join(words[:n])
            if path in COMMANDS:
                found.setdefault(path, []).append(snippet)
                break
    return found


def _visible_options(cmd) -> set[str]:  # noqa: ANN001
    import click

    return {
        o
        for p in cmd.params
        if isinstance(p, click.Option) and not p.hidden
        for o in p.opts + p.secondary_opts
    }


def test_readme_command_table_lists_every_command():
    table = _section(_readme(), "Commands")
    rows = {m.strip() for m in re.findall(r"^\| `([^`]+)` \|", table, flags=re.M)}
    assert rows == set(COMMANDS), (
        f"README command table: missing {sorted(set(COMMANDS) - rows)}, "
        f"unknown {sorted(rows - set(COMMANDS))}"
    )


@pytest.mark.parametrize("path", sorted(COMMANDS))
def test_readme_examples_match_help(path):
    from click.testing import CliRunner

    from riskmodel.cli import main

    examples = _examples().get(path)
    assert examples, f"the README has no `riskmodel {path} ...` example"
    r = CliRunner().invoke(main, [*path.split(), "--help"])
    assert r.exit_code == 0, r.output
    visible = _visible_options(COMMANDS[path])
    for opt in sorted(visible - {"-h", "--help"}):
        assert opt in r.output, f"{opt} of 'riskmodel {path}' not in --help"
    for snippet in examples:
        for opt in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", snippet):
            assert opt in visible, (
                f"README: `riskmodel {snippet}`: {opt} is not an option of {path}"
            )


def test_readme_option_groups_match_the_cli():
    """The reader and model option groups the README lists are exactly those of the commands."""
    from riskmodel.cli import _common

    text = _section(_readme(), "Commands")
    for bullet, commands in (("Reader options", ("validate", "train", "backtest", "score", "plan")),
                             ("Model options", ("score", "plan"))):  # fmt: skip
        para = text[text.index(f"**{bullet}**") :].split("\n* ")[0]
        listed = set(re.findall(r"`(--[a-z][a-z0-9-]*)`", para.split(":", 1)[1]))
        for path in commands:
            assert listed <= _visible_options(COMMANDS[path]), (bullet, path)
    reader = {o for deco in _common._reader_option_list(True) for o in _opts_of(deco)}
    para = text[text.index("**Reader options**") :].split("\n* ")[0]
    assert set(re.findall(r"`(--[a-z][a-z0-9-]*)`", para.split(":", 1)[1])) == reader


def _opts_of(deco) -> list[str]:  # noqa: ANN001
    def f() -> None: ...

    deco(f)
    return [o for p in f.__click_params__ for o in p.opts]


def test_readme_exit_codes_match_errors():
    from riskmodel import errors

    table = _section(_readme(), "Exit codes")
    documented = {int(c) for c in re.findall(r"^\| (\d+) \|", table, flags=re.M)}
    codes = {v for k, v in vars(errors).items() if k.startswith("EXIT_")}
    assert documented == codes
