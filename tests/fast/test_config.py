"""`offgrid config` in-process: show, set, unset, path, keys, and what bad values do."""

from __future__ import annotations

import pytest

from offgrid import config
from tests.fast.helpers import hint, one_line_error


def test_show_set_unset_round_trip(cli, isolated_home) -> None:
    empty = cli("config", "show")
    path = isolated_home / "offgrid" / "config.toml"
    assert empty.returncode == 0 and empty.stdout == ""
    assert empty.stderr == f"no settings yet ({path})\n"
    assert cli("config", "set", "chat.temperature", "0.3").stderr == "chat.temperature = 0.3\n"
    assert cli("config", "set", "history.enabled", "off").stderr == "history.enabled = False\n"
    assert cli("config", "set", "chat.model", "qwen3-0.6b").stderr == "chat.model = 'qwen3-0.6b'\n"
    shown = cli("config", "show")
    assert shown.stdout == ('[chat]\nmodel = "qwen3-0.6b"\ntemperature = 0.3\n\n'
                            "[history]\nenabled = false\n")
    assert config.load() == {"chat.model": "qwen3-0.6b", "chat.temperature": 0.3,
                             "history.enabled": False}
    assert (path.stat().st_mode & 0o777) == 0o600  # owner-only
    assert cli("config", "unset", "chat.temperature").stderr == "chat.temperature removed\n"
    assert cli("config", "unset", "chat.temperature").stderr == "chat.temperature was not set\n"
    assert "temperature" not in cli("config", "show").stdout


def test_path_and_keys(cli, isolated_home) -> None:
    assert cli("config", "path").stdout == f"{isolated_home / 'offgrid' / 'config.toml'}\n"
    keys = cli("config", "keys").stdout.splitlines()
    assert "chat.temperature (float)" in keys and "history.enabled (bool)" in keys
    assert keys == sorted(keys) and len(keys) == len(config.SCHEMA)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("chat.temprature", "1", "unknown config key 'chat.temprature'"),
    ("chat.temperature", "hot", "chat.temperature must be float, not 'hot'"),
    ("chat.temperature", "9", "chat.temperature must be between 0.0 and 5.0, not 9.0"),
    ("chat.temperature", "nan", "chat.temperature must be a finite number, not 'nan'"),
    ("chat.ctx", "100", "chat.ctx must be at least 256, not 100"),
    ("history.enabled", "maybe", "history.enabled must be true or false, not 'maybe'"),
    ("transcribe.threads", "0", "transcribe.threads must be at least 1, not 0"),
])
def test_bad_values_are_refused(cli, key, value, message) -> None:
    one_line_error(cli("config", "set", key, value), message, 2)
    assert config.load() == {}


def test_unknown_key_hint_lists_the_keys(cli) -> None:
    result = cli("config", "set", "chat.temprature", "1")
    assert hint(result).startswith("known keys: chat.batch, chat.ctx,")


def test_a_malformed_config_file_is_one_error_everywhere(cli, isolated_home, fake_model) -> None:
    path = isolated_home / "offgrid" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("[chat\n")
    for args in (("config", "show"), ("chat", "-m", str(fake_model), "hi")):
        result = cli(*args)
        one_line_error(result, f"config file {path} is malformed")
        assert hint(result) == f"fix it or delete it: rm {path}"


def test_a_hand_edited_wrong_type_can_be_repaired(cli, isolated_home, fake_model) -> None:
    path = isolated_home / "offgrid" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text('[chat]\ntemperature = "hot"\n')
    broken = cli("chat", "-m", str(fake_model), "hi")
    one_line_error(broken, "chat.temperature must be float, not 'hot'")
    assert hint(broken) == ("offgrid config set chat.temperature VALUE   "
                            "(or: offgrid config unset chat.temperature)")
    assert cli("config", "set", "chat.temperature", "0.5").returncode == 0
    assert cli("chat", "-m", str(fake_model), "hi").returncode == 0


def test_a_hand_edited_out_of_range_value(cli, isolated_home, fake_model) -> None:
    path = isolated_home / "offgrid" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text("[chat]\nctx = 10\n")
    result = cli("chat", "-m", str(fake_model), "hi")
    one_line_error(result, "chat.ctx must be at least 256, not 10", 2)
    assert hint(result) == "offgrid config set chat.ctx VALUE   (or: offgrid config unset chat.ctx)"


def test_missing_arguments_are_usage_errors(cli) -> None:
    one_line_error(cli("config", "set", "chat.model"), "Missing argument 'VALUE'", 2)
    one_line_error(cli("config", "unset"), "Missing argument 'KEY'", 2)


@pytest.mark.parametrize(("key", "value"), [("imagine.steps", "0"), ("imagine.cfg_scale", "0")])
def test_image_values_the_flags_refuse_are_refused_in_the_config(cli, key, value) -> None:
    result = cli("config", "set", key, value)
    assert result.returncode == 2 and result.stderr.startswith(f"offgrid: error: {key} must be")


def test_version(cli) -> None:
    from offgrid import __version__

    result = cli("--version")
    assert result.returncode == 0 and result.stdout == f"offgrid {__version__}\n"


@pytest.mark.parametrize("group", [(), ("config",), ("models",), ("completion",)],
                         ids=["offgrid", "config", "models", "completion"])
def test_a_group_without_a_subcommand_shows_its_help(cli, group) -> None:
    result = cli(*group)
    assert "Usage: offgrid" in result.stdout + result.stderr
    assert "offgrid: error:" not in result.stderr, result.stderr
