import pandas as pd
import pytest

from riskmodel.config.settings import load_settings
from riskmodel.errors import ConfigError
from riskmodel.geo.shifts import assign_shift, parse_shifts, shift_windows

SHIFTS = "morning=06:00-14:00,afternoon=14:00-22:00,night=22:00-06:00"


def test_dst_nights_last_9_and_7_hours():
    oct_ = shift_windows("2025-10-25", "2025-10-26", SHIFTS)
    night = oct_[(oct_["shift"] == "night")].set_index(
        oct_["date"].dt.strftime("%m-%d")[oct_["shift"] == "night"]
    )
    assert night.loc["10-25", "hours"] == 9.0
    assert night.loc["10-26", "hours"] == 8.0
    mar = shift_windows("2025-03-29", "2025-03-29", SHIFTS)
    assert mar.loc[mar["shift"] == "night", "hours"].item() == 7.0
    # windows tile time without gaps or overlaps
    w = shift_windows("2025-03-25", "2025-04-02", SHIFTS)
    assert (w["start_utc"].iloc[1:].to_numpy() == w["end_utc"].iloc[:-1].to_numpy()).all()


def test_assign_shift_strictly_inside():
    w = shift_windows("2025-01-01", "2025-01-02", SHIFTS)
    ts = pd.Series(
        pd.to_datetime(["2025-01-01T05:00:00Z", "2025-01-01T04:59:59Z", "2024-12-01T00:00:00Z"])
    )
    got = assign_shift(ts, w).tolist()
    assert got[0] == w.loc[w["shift"] == "morning", "window"].iloc[0]
    assert got[1] == -1 or w.loc[got[1], "shift"] == "night"
    assert got[2] == -1


def test_parse_shifts_errors():
    with pytest.raises(ConfigError):
        parse_shifts("day=6-18")
    with pytest.raises(ConfigError):
        parse_shifts("a=06:00-14:00,a=14:00-22:00")


def test_settings_precedence(tmp_path):
    cfg = tmp_path / "riskmodel.toml"
    cfg.write_text(
        'segment_length_m = 500\nmodels_root = "m_file"\n[columns]\ntimestamp = "DATUM_CAS"\n'
    )
    s = load_settings(cfg, env={"RISKMODEL_MODELS_ROOT": "m_env"})
    assert s.segment_length_m == 500.0 and s.sources["segment_length_m"] == f"file:{cfg}"
    assert s.models_root == "m_env" and s.sources["models_root"] == "env:RISKMODEL_MODELS_ROOT"
    assert s.timezone == "Europe/Ljubljana" and s.sources["timezone"] == "default"
    f = s.with_flags(models_root="m_flag", segment_length_m=None)
    assert f.models_root == "m_flag" and f.sources["models_root"] == "flag"
    assert f.segment_length_m == 500.0
    assert s.columns == {"timestamp": "DATUM_CAS"}


def test_settings_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("nonsense = 1\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings(bad, env={})
    bad.write_text("segment_length_m = 'x'\n")
    with pytest.raises(ConfigError, match="number"):
        load_settings(bad, env={})
    bad.write_text('signing_key = "abc"\n')
    with pytest.raises(ConfigError, match="environment"):
        load_settings(bad, env={})
    s = load_settings(None, env={"RISKMODEL_SIGNING_KEY": "secret"})
    assert ("signing_key", "***", "env:RISKMODEL_SIGNING_KEY") in s.describe()


def test_reader_settings_are_checked_and_read_by_every_command(tmp_path):
    """assume_tz & co. in riskmodel.toml: checked when loaded, used by the readers of every
    command (``daily`` has no reader flags), and a flag still wins."""
    from riskmodel.api import read_inputs

    cfg = tmp_path / "riskmodel.toml"
    for line, msg in (
        ('assume_tz = "Europe/Lubljana"', "assume_tz = 'Europe/Lubljana' is not a known time zone"),
        ('dst = "sometimes"', "not a DST policy"),
        ('encoding = "klingon"', "not a known encoding"),
        ('delimiter = ";;"', "not one character"),
        ('input_crs = "EPSG:999999"', "not a known CRS"),
    ):
        cfg.write_text(line + "\n")
        with pytest.raises(ConfigError, match=msg):
            load_settings(cfg, env={})
    ev = tmp_path / "events.csv"
    ev.write_bytes(
        "Datum in čas;Zemljepisna širina;Zemljepisna dolžina\n"
        "05.07.2024 10:00;45,6112;14,6402\n06.07.2024 23:30;45,6112;14,6402\n".encode("cp1250")
    )
    plain = load_settings(None, env={})
    with pytest.raises(Exception, match="assume_tz in riskmodel.toml"):
        read_inputs(plain, ev)
    cfg.write_text('assume_tz = "Europe/Ljubljana"\nencoding = "cp1250"\ndelimiter = ";"\n')
    s = load_settings(cfg, env={})
    ds = read_inputs(s, ev)
    assert list(ds.events["timestamp"].dt.hour) == [8, 21]  # CEST: UTC+2
    flagged = read_inputs(s, ev, read_kwargs={"assume_tz": "UTC"})
    assert list(flagged.events["timestamp"].dt.hour) == [10, 23]


def test_settings_are_typed_and_frozen():
    import dataclasses
    import typing

    from riskmodel.config.settings import SETTING_NAMES, Settings

    s = load_settings(None, env={"RISKMODEL_SEGMENT_LENGTH_M": "750", "RISKMODEL_SIGNING_KEY": "k"})
    hints = typing.get_type_hints(Settings)
    for name in SETTING_NAMES:  # every setting is a typed field with a source
        assert isinstance(getattr(s, name), hints[name]), name
        assert name in s.sources
    assert s.segment_length_m == 750.0 and isinstance(s.segment_length_m, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.timezone = "UTC"
    f = s.with_flags(max_distance_m="5000")
    assert f.max_distance_m == 5000.0 and s.max_distance_m == 20000.0  # a copy
    assert f.sources["max_distance_m"] == "flag" and s.sources["max_distance_m"] == "default"
    with pytest.raises(ConfigError, match="unknown setting"):
        s.with_flags(no_such_setting=1)
    assert "'k'" not in repr(s)  # the secret is not printed
    assert [r[0] for r in Settings().describe()] == list(SETTING_NAMES)
