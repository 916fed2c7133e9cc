"""The feature-set definition: a TOML file analysts edit (``features/default.toml``).

The bundled ``default.toml`` is the only source of the defaults: a user's spec is the default
spec with the user's values laid over it, section by section.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from riskmodel.errors import ConfigError
from riskmodel.geo.geodata import bundled_dir

_META_KEYS = ("name", "version")


def default_spec_path() -> Path:
    """Path of the bundled default spec."""
    return bundled_dir("features") / "default.toml"


def _read_toml(p: Path) -> dict[str, Any]:
    if not p.is_file():
        raise ConfigError(f"feature spec not found: {p}", fix="check the feature_spec setting")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            f"invalid feature spec: {exc}", where=str(p), fix="fix the TOML syntax"
        ) from None


@functools.cache
def _defaults() -> dict[str, dict[str, Any]]:
    """The sections of the bundled default spec (read once)."""
    data = _read_toml(default_spec_path())
    return {k: v for k, v in data.items() if k not in _META_KEYS}


@dataclass
class FeatureSpec:
    """A feature-set definition read from TOML.

    Attributes
    ----------
    data : dict
        The parsed TOML (defaults filled in).
    source : str
        Where it came from.
    """

    data: dict[str, Any]
    source: str = "builtin"

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> FeatureSpec:
        """Read a spec (default: the bundled ``features/default.toml``)."""
        p = Path(path) if path else default_spec_path()
        return cls(_with_defaults(_read_toml(p), str(p)), str(p))

    @property
    def sha256(self) -> str:
        """Hash of the canonical spec (what the model bundle records)."""
        return hashlib.sha256(json.dumps(self.data, sort_keys=True).encode()).hexdigest()

    def section(self, name: str) -> dict[str, Any]:
        """One section (``history``, ``route``, ``time``, ``effort``)."""
        return self.data.get(name, {})

    def enabled(self, name: str) -> bool:
        """Whether a feature group is on."""
        return bool(self.section(name).get("enabled", False))


def _with_defaults(data: dict[str, Any], where: str) -> dict[str, Any]:
    defaults_all = _defaults()
    out: dict[str, Any] = {"name": data.get("name", "custom"), "version": data.get("version", 1)}
    for sec, defaults in defaults_all.items():
        given = data.get(sec, {})
        if not isinstance(given, dict):
            raise ConfigError(f"[{sec}] must be a table", where=where)
        unknown = set(given) - set(defaults)
        if unknown:
            raise ConfigError(
                f"unknown key(s) in [{sec}]: {', '.join(sorted(unknown))}",
                where=where,
                fix=f"use: {', '.join(sorted(defaults))}",
            )
        merged = copy.deepcopy(defaults)
        merged.update(given)
        out[sec] = merged
    unknown_sec = set(data) - set(defaults_all) - set(_META_KEYS)
    if unknown_sec:
        raise ConfigError(
            f"unknown section(s): {', '.join(sorted(unknown_sec))}",
            where=where,
            fix=f"sections are {', '.join(defaults_all)}",
        )
    return out
