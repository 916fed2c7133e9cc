"""One documented settings object, resolved with the precedence
flag > environment variable (``RISKMODEL_*``) > ``riskmodel.toml`` > built-in default.

Keys (TOML key / environment variable / meaning):

=====================  ===============================  ==============================================
``segment_length_m``   ``RISKMODEL_SEGMENT_LENGTH_M``   segment length in metres (default 1000)
``metric_crs``         ``RISKMODEL_METRIC_CRS``         metric CRS for distances (default EPSG:3794)
``timezone``           ``RISKMODEL_TIMEZONE``           local zone of shifts (default Europe/Ljubljana)
``shifts``             ``RISKMODEL_SHIFTS``             ``name=HH:MM-HH:MM,...`` (default morning 06-14,
                                                        afternoon 14-22, night 22-06)
``models_root``        ``RISKMODEL_MODELS_ROOT``        model registry folder (default ``./models``)
``feature_spec``       ``RISKMODEL_FEATURE_SPEC``       feature-set TOML (default bundled ``default.toml``)
``border``             ``RISKMODEL_BORDER``             border line file (default bundled)
``settlements``        ``RISKMODEL_SETTLEMENTS``        settlements layer (default bundled)
``crossings``          ``RISKMODEL_CROSSINGS``          border crossing points (default bundled)
``corridors``          ``RISKMODEL_CORRIDORS``          route corridors (default bundled)
``areas``              ``RISKMODEL_AREAS``              responsibility areas (default bundled)
``max_distance_m``     ``RISKMODEL_MAX_DISTANCE_M``     events farther from the border are quarantined
                                                        (default 20000)
``audit_log``          ``RISKMODEL_AUDIT_LOG``          append-only plan audit log (default
                                                        ``./plans/audit.jsonl``)
``signing_key``        ``RISKMODEL_SIGNING_KEY``        HMAC key for model bundles (env only: never in
                                                        a file)
=====================  ===============================  ==============================================

A ``[columns]`` table maps canonical input columns to a user's names, e.g.
``timestamp = "DATUM_CAS"``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from riskmodel.errors import ConfigError

DEFAULT_SHIFTS = "morning=06:00-14:00,afternoon=14:00-22:00,night=22:00-06:00"

_DEFAULTS: dict[str, Any] = {
    "segment_length_m": 1000.0,
    "metric_crs": "EPSG:3794",
    "timezone": "Europe/Ljubljana",
    "shifts": DEFAULT_SHIFTS,
    "models_root": "models",
    "feature_spec": "",
    "border": "",
    "settlements": "",
    "crossings": "",
    "corridors": "",
    "areas": "",
    "max_distance_m": 20000.0,
    "audit_log": "plans/audit.jsonl",
    "signing_key": "",
}
_TYPES: dict[str, type] = {k: type(v) for k, v in _DEFAULTS.items()}
_ENV_ONLY = {"signing_key"}
_SECRET = {"signing_key"}


@dataclass
class Settings:
    """Effective configuration and where each value came from.

    Attributes
    ----------
    values : dict
        Key -> effective value.
    sources : dict
        Key -> ``"default"``, ``"file:<path>"``, ``"env:<NAME>"`` or ``"flag"``.
    columns : dict
        Canonical column name -> user's column name (from ``[columns]``; flags add to it).
    """

    values: dict[str, Any] = field(default_factory=lambda: dict(_DEFAULTS))
    sources: dict[str, str] = field(default_factory=lambda: dict.fromkeys(_DEFAULTS, "default"))
    columns: dict[str, str] = field(default_factory=dict)
    config_path: Path | None = None

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name in values:
            return values[name]
        raise AttributeError(name)

    def with_flags(self, **flags: Any) -> Settings:
        """Return a copy where non-``None`` flags override everything else."""
        new = Settings(dict(self.values), dict(self.sources), dict(self.columns), self.config_path)
        for key, val in flags.items():
            if val is None:
                continue
            if key not in _DEFAULTS:
                raise ConfigError(f"unknown setting {key!r}")
            new.values[key] = _coerce(key, val, "flag")
            new.sources[key] = "flag"
        return new

    def describe(self) -> list[tuple[str, str, str]]:
        """Rows of (key, value, source) for ``riskmodel config``; secrets are masked."""
        rows = []
        for key in _DEFAULTS:
            val = self.values[key]
            shown = ("***" if val else "") if key in _SECRET else str(val)
            rows.append((key, shown, self.sources[key]))
        for canon, user in sorted(self.columns.items()):
            rows.append((f"columns.{canon}", user, f"file:{self.config_path}"))
        return rows


def _coerce(key: str, value: Any, source: str) -> Any:
    typ = _TYPES[key]
    try:
        if typ is float:
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"setting {key!r} from {source} must be a number, got {value!r}",
            fix=f"set {key} to a number",
        ) from None


def load_settings(
    config: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None
) -> Settings:
    """Resolve settings from file and environment (flags are applied with :meth:`Settings.with_flags`).

    Parameters
    ----------
    config : path-like, optional
        TOML file; default ``./riskmodel.toml`` if it exists (or ``RISKMODEL_CONFIG``).
    env : dict, optional
        Environment to read (default ``os.environ``).
    """
    env = dict(os.environ) if env is None else env
    s = Settings()
    path: Path | None = None
    if config is not None:
        path = Path(config)
        if not path.is_file():
            raise ConfigError(
                f"configuration file not found: {path}", fix="check the --config path"
            )
    elif env.get("RISKMODEL_CONFIG"):
        path = Path(env["RISKMODEL_CONFIG"])
        if not path.is_file():
            raise ConfigError(
                f"configuration file not found: {path} (from RISKMODEL_CONFIG)",
                fix="fix or unset RISKMODEL_CONFIG",
            )
    elif Path("riskmodel.toml").is_file():
        path = Path("riskmodel.toml")
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(
                f"invalid TOML: {exc}", where=str(path), fix="fix the syntax"
            ) from None
        s.config_path = path
        cols = data.pop("columns", {})
        if not isinstance(cols, dict):
            raise ConfigError("[columns] must be a table", where=str(path))
        s.columns = {str(k): str(v) for k, v in cols.items()}
        for key, val in data.items():
            if key not in _DEFAULTS:
                raise ConfigError(
                    f"unknown setting {key!r}",
                    where=str(path),
                    fix=f"use one of: {', '.join(sorted(_DEFAULTS))}",
                )
            if key in _ENV_ONLY:
                raise ConfigError(
                    f"{key} may only come from the environment",
                    where=str(path),
                    fix=f"remove it from the file and set RISKMODEL_{key.upper()}",
                )
            s.values[key] = _coerce(key, val, str(path))
            s.sources[key] = f"file:{path}"
    for key in _DEFAULTS:
        name = f"RISKMODEL_{key.upper()}"
        if env.get(name, "") != "":
            s.values[key] = _coerce(key, env[name], name)
            s.sources[key] = f"env:{name}"
    return s
