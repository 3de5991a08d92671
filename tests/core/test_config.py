import dataclasses

import pytest
import yaml

from bitmill.config import AccelConfig, shipped_names
from bitmill.errors import ConfigError
from tests.conftest import REPO, assert_one_error_line

CONFIGS = sorted((REPO / "configs" / "accel").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_load_and_round_trip(path):
    cfg = AccelConfig.load(path)
    assert AccelConfig.from_dict(cfg.to_dict()) == cfg
    assert yaml.safe_load(yaml.safe_dump(cfg.to_dict())) == cfg.to_dict()


def test_shipped_configs_present():
    assert {p.stem for p in CONFIGS} >= {"tiny", "ecp5-85f"}


def test_shipped_names_are_the_configs_directory():
    assert shipped_names() == tuple(sorted(p.stem for p in CONFIGS))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_resolve_by_name_and_by_path(path, tmp_path, monkeypatch):
    expected = AccelConfig.load(path)
    monkeypatch.chdir(tmp_path)                  # names resolve from any working directory
    assert AccelConfig.resolve(path.stem) == expected
    assert AccelConfig.resolve(str(path)) == expected
    assert AccelConfig.resolve(path) == expected


def test_resolve_tells_paths_from_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for path_like in ("tiny.yaml", "tiny.yml", "accel/tiny", f"{tmp_path}/tiny"):
        with pytest.raises(ConfigError, match="cannot read accelerator config"):
            AccelConfig.resolve(path_like)
    (tmp_path / "tiny").write_text(yaml.safe_dump(_base() | {"name": "local"}))
    assert AccelConfig.resolve("tiny").name == "local"          # an existing file is a path
    (tmp_path / "tiny").unlink()
    (tmp_path / "tiny").mkdir()                                  # a directory is not a config
    assert AccelConfig.resolve("tiny").name == "tiny"


def test_resolve_unknown_name_lists_the_shipped_names():
    with pytest.raises(ConfigError) as info:
        AccelConfig.resolve("ecp5")
    assert str(info.value) == ("no shipped accelerator config named 'ecp5'; shipped configs: "
                               + ", ".join(shipped_names()) + " (or give the path of a YAML file)")


def _base():
    return AccelConfig.load(REPO / "configs/accel/tiny.yaml").to_dict()


@pytest.mark.parametrize("key,value,fragment", [
    ("rows", 0, "rows must be an integer in 1..256, not 0"),
    ("cols", "4", "cols must be an integer"),
    ("lanes", 2.5, "lanes must be an integer"),
    ("pe_family", "systolic", "pe_family must be one of bitserial, bitparallel"),
    ("weight_bits", [0, 8], "weight_bits must be an integer in 1..8, not 0"),
    ("act_bits", [6, 2], "act_bits must have min <= max"),
    ("act_bits", 8, "act_bits must be a pair"),
    ("acc_bits", 4, "acc_bits must be an integer in 8..64"),
    ("clock_mhz", -1, "clock_mhz must be a number"),
    ("board", "de10", "board must be one of"),
    ("rows", True, "rows must be an integer"),
    ("k_passes", 3, "k_passes must be 1, 2, 4 or 8"),
    ("k_passes", True, "k_passes must be 1, 2, 4 or 8"),
    ("act_read_bytes", 4, "or a power of two in 8..64"),
    ("act_read_bytes", 24, "or a power of two in 8..64"),
    ("act_read_bytes", 128, "act_read_bytes must be 0"),
    ("act_read_bytes", True, "act_read_bytes must be 0"),
])
def test_bad_values_name_key_value_and_range(key, value, fragment):
    data = _base() | {key: value}
    with pytest.raises(ConfigError, match=fragment.replace("(", r"\(").replace("[", r"\[")):
        AccelConfig.from_dict(data)


def test_unknown_and_missing_keys():
    with pytest.raises(ConfigError, match="unknown key 'colums'; allowed keys: name, rows"):
        AccelConfig.from_dict(_base() | {"colums": 3})
    data = _base()
    del data["lanes"]
    with pytest.raises(ConfigError, match="missing key 'lanes'"):
        AccelConfig.from_dict(data)
    with pytest.raises(ConfigError, match="expected a mapping"):
        AccelConfig.from_dict([1, 2])


def test_activation_words_default_to_the_beat_and_leave_the_plain_form_alone():
    cfg = AccelConfig.from_dict(_base())
    assert cfg.act_read_bytes == 0 and cfg.act_word_bytes == cfg.mem_bytes_per_cycle == 8
    assert "act_read_bytes" not in cfg.to_dict()            # hashes of existing configs unchanged
    wide = AccelConfig.from_dict(_base() | {"act_read_bytes": 32})
    assert wide.act_word_bytes == 32 and AccelConfig.from_dict(wide.to_dict()) == wide
    with pytest.raises(ConfigError, match="act_buffer_bytes must hold two slots of whole 64-byte words"):
        AccelConfig.from_dict(_base() | {"act_read_bytes": 64, "act_buffer_bytes": 64 + 32})


def test_frozen_and_derived():
    cfg = AccelConfig.from_dict(_base())
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.rows = 3
    assert cfg.pe_count == 4 and cfg.supports(8, 1) and not cfg.supports(9, 1)


def test_dump_then_load(tmp_path):
    cfg = AccelConfig.from_dict(_base())
    cfg.dump(tmp_path / "c.yaml")
    assert AccelConfig.load(tmp_path / "c.yaml") == cfg


@pytest.mark.parametrize("text,fragment", [
    ("rows: 0\n", "rows must be an integer in 1..256, not 0"),
    ("bogus: 1\n", "unknown key 'bogus'"),
    ("weight_bits: [0, 8]\n", "weight_bits must be an integer in 1..8, not 0"),
    ("rows: [\n", "not valid YAML"),
])
def test_cli_config_check_errors(tmp_path, run_cli, text, fragment):
    path = tmp_path / "bad.yaml"
    try:
        body = yaml.safe_dump(_base() | yaml.safe_load(text))
    except yaml.YAMLError:
        body = text
    path.write_text(body)
    status, _, err = run_cli("config", "check", path)
    assert_one_error_line(status, err, str(path), fragment)


def test_cli_config_check_ok_and_missing_file(run_cli, tmp_path):
    status, out, _ = run_cli("config", "check", REPO / "configs/accel/ecp5-85f.yaml")
    assert status == 0 and out.startswith("ok: ecp5-85f: 16x16 bitserial")
    status, _, err = run_cli("config", "check", tmp_path / "none.yaml")
    assert_one_error_line(status, err, "cannot read accelerator config")
