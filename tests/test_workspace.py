"""The station workspace: creation, discovery, key permissions, state."""

from __future__ import annotations

import os
import stat

import pytest

from riskmodel.config.workspace import find_workspace, init_workspace
from riskmodel.errors import ConfigError


def test_init_creates_layout_and_private_key(tmp_path):
    ws, made = init_workspace(tmp_path / "ws")
    for name in ("data", "models", "out", "audit", "riskmodel.toml", "caps.toml"):
        assert (ws.root / name).exists(), name
    mode = stat.S_IMODE(ws.key_path.stat().st_mode)
    assert mode == 0o600
    assert len(ws.key()) == 32
    # A second init keeps every file (key included) and creates nothing.
    key = ws.key_path.read_bytes()
    _, made2 = init_workspace(tmp_path / "ws")
    assert made2 == [] and ws.key_path.read_bytes() == key and len(made) >= 7


def test_find_nearest_upwards_env_and_explicit(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    deep = ws.root / "out" / "2026-12-01"
    deep.mkdir()
    assert find_workspace(cwd=deep, env={}).root == ws.root
    assert find_workspace(cwd=tmp_path, env={}) is None
    assert find_workspace(cwd=tmp_path, env={"RISKMODEL_WORKSPACE": str(ws.root)}).root == ws.root
    assert find_workspace(str(ws.root), env={}).root == ws.root
    with pytest.raises(ConfigError, match="not a riskmodel workspace"):
        find_workspace(str(tmp_path), env={})
    # A plain riskmodel.toml (settings only) is not a workspace.
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "riskmodel.toml").write_text('models_root = "m"\n')
    assert find_workspace(cwd=tmp_path / "plain", env={}) is None


def test_key_readable_by_others_is_refused(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    os.chmod(ws.key_path, 0o644)
    with pytest.raises(ConfigError, match="readable by others"):
        ws.key()


def test_state_round_trip_and_corruption(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    assert ws.read_state() == {}
    ws.update_state(default_model="rm-1", audit={"seq": 3, "head": "ab"})
    ws.update_state(default_model="rm-2")
    assert ws.read_state() == {"default_model": "rm-2", "audit": {"seq": 3, "head": "ab"}}
    ws.state_path.write_text("{not json")
    with pytest.raises(ConfigError, match="corrupt"):
        ws.read_state()


def test_paths_resolve_inside(tmp_path):
    ws, _ = init_workspace(tmp_path / "ws")
    assert ws.resolve("models") == ws.root / "models"
    assert ws.contains(ws.resolve("models/x")) and not ws.contains(tmp_path)
