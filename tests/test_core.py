"""Fast unit tests of the plain core modules: config, device, catalog, store, history,
thinking."""

from __future__ import annotations

import io
import re
import stat
from pathlib import Path

import pytest

from offgrid import config, device
from offgrid.device import paths
from offgrid.errors import ModelNotCachedError, OffgridError, UsageError
from offgrid.history import History
from offgrid.models import catalog, store
from offgrid.chat.thinking import split_thinking, strip_thinking


def test_config_roundtrip_and_precedence() -> None:
    assert config.set_value("chat.temperature", "0.2") == 0.2
    config.set_value("chat.model", "qwen3-0.6b")
    config.set_value("history.enabled", "no")
    assert config.load() == {"chat.temperature": 0.2, "chat.model": "qwen3-0.6b",
                             "history.enabled": False}
    merged = config.settings("chat", {"temperature": 0.9, "top_k": None}, {"top_k": 40, "ctx": 1})
    assert merged["temperature"] == 0.9 and merged["top_k"] == 40 and merged["model"] == "qwen3-0.6b"
    mode = stat.S_IMODE(paths.config_file().stat().st_mode)
    assert mode == 0o600
    assert config.unset_value("chat.model") and not config.unset_value("chat.model")


def test_config_rejects_bad_keys_values_and_files() -> None:
    with pytest.raises(UsageError, match="unknown config key"):
        config.set_value("chat.temprature", "1")
    with pytest.raises(UsageError, match="must be float"):
        config.set_value("chat.temperature", "hot")
    for text in ("nan", "inf", "-Infinity"):
        with pytest.raises(UsageError, match="finite"):
            config.set_value("chat.temperature", text)
    with pytest.raises(UsageError, match="chat.ctx must be at least 256, not 10"):
        config.set_value("chat.ctx", "10")  # it failed later, deep in the engine
    with pytest.raises(UsageError, match="between 0.0 and 1.0"):
        config.set_value("summarize.top_p", "7")
    paths.private_dir(paths.config_dir())
    paths.config_file().write_text("[see]\nmax_tokens = 0\n")  # edited by hand
    with pytest.raises(UsageError, match="see.max_tokens must be at least 1"):
        config.settings("see", {"max_tokens": None})
    assert config.settings("see", {"max_tokens": 5})["max_tokens"] == 5  # a flag overrides it
    paths.config_file().write_text("[chat\nmodel = ")
    with pytest.raises(OffgridError, match="malformed"):
        config.load()


def _fake_sys(root: Path, freqs: list[int]) -> Path:
    for i, freq in enumerate(freqs):
        d = root / f"cpu{i}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "cpuinfo_max_freq").write_text(f"{freq}\n")
    return root


def test_performance_cores_on_big_little(tmp_path: Path) -> None:
    sys_cpu = _fake_sys(tmp_path, [1800000] * 4 + [2400000] * 3 + [3000000])
    assert device.performance_cores(sys_cpu) == [4, 5, 6, 7]
    same = _fake_sys(tmp_path / "same", [2000000] * 4)
    assert device.performance_cores(same) == [0, 1, 2, 3]


def test_meminfo(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:        7825000 kB\nMemFree: 100 kB\nMemAvailable:    3000000 kB\n")
    assert device.total_ram_mb(meminfo) == 7825000 // 1024
    assert device.available_ram_mb(meminfo) == 3000000 // 1024


def test_catalog_defaults_are_verified_and_fit() -> None:
    cat = catalog.load()
    for task, aliases in cat.defaults.items():
        assert task in catalog.TASKS
        for alias in aliases:
            entry = cat.get(alias)
            assert entry is not None and entry.verified and entry.task == task, alias
            assert all(f.name and (f.size or 0) > 0 for f in entry.files), alias
    assert cat.default_for("text", ram_mb=2000).ram_mb <= 2000 * catalog.DEFAULT_RAM_SHARE
    assert cat.default_for("text", ram_mb=100).alias  # something, even on a tiny device
    for entry in cat.for_task("vision"):
        assert {f.role for f in entry.files} >= {"model", "mmproj"}, entry.alias


def test_store_specs(tmp_path: Path) -> None:
    local = tmp_path / "m.gguf"
    local.write_bytes(b"x")
    assert store.resolve(str(local), "text").path == local
    with pytest.raises(UsageError, match="unknown model"):
        store.resolve("no-such-model", "text")
    with pytest.raises(UsageError, match="bad model spec"):
        store.resolve("justrepo:file.gguf", "text")
    with pytest.raises(ModelNotCachedError, match="not downloaded") as info:
        store.resolve("qwen3-0.6b", "text")
    assert info.value.hint == "offgrid models pull qwen3-0.6b"
    with pytest.raises(UsageError, match="is a speech model"):
        store.resolve("whisper-tiny", "text")
    with pytest.raises(ModelNotCachedError):
        store.resolve("someone/repo:file.gguf", "text")


def test_memory_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(device, "available_ram_mb", lambda: 1000)
    with pytest.raises(OffgridError, match="not enough memory"):
        store.check_memory(2000 << 20)
    store.check_memory(2000 << 20, force=True)
    store.check_memory(500 << 20)


def test_history_crud_search_and_privacy(tmp_path: Path) -> None:
    history = History()
    conv = history.start("chat", "m", name="work")
    history.add(conv, "user", "the quarterly budget")
    history.add(conv, "assistant", "numbers")
    run = history.record_run("summarize", "m", "contract.pdf", "a summary")
    assert [r.id for r in history.list()] == [run, conv]
    assert [r.id for r in history.list(search="budget")] == [conv]
    assert [r.id for r in history.list(command="summarize")] == [run]
    assert history.find(command="chat", name="work").id == conv
    assert stat.S_IMODE(history.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(history.path.parent.stat().st_mode) == 0o700
    assert history.delete_all() == 2
    assert b"quarterly budget" not in history.path.read_bytes()


def test_corrupt_history_is_a_clear_error() -> None:
    path = paths.history_db()
    paths.private_dir(path.parent)
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(OffgridError, match="unreadable") as info:
        History().list()
    assert "mv" in (info.value.hint or "")


@pytest.mark.parametrize("chunks", [["<think>plan</think>Answer"],
                                    ["<thi", "nk>pl", "an</th", "ink>Ans", "wer"]])
def test_split_thinking_across_chunks(chunks: list[str]) -> None:
    pieces = list(split_thinking(chunks))
    assert "".join(t for k, t in pieces if k == "think") == "plan"
    assert "".join(t for k, t in pieces if k == "text") == "Answer"


def test_strip_thinking_keeps_plain_text() -> None:
    assert strip_thinking("a < b and <thinking> is a word") == "a < b and <thinking> is a word"
    assert strip_thinking("<think>\n\n</think>\n\nHi") == "Hi"


def test_models_rm_also_removes_an_interrupted_download() -> None:
    from offgrid.models import hub

    entry = catalog.load().get("whisper-tiny")
    assert entry is not None and entry.files[0].sha256
    partial = hub.partial_file(entry.repo, entry.files[0].sha256)
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"x" * 1234)
    assert store.remove("whisper-tiny") == 1234
    assert not partial.exists()
    assert store.remove("whisper-tiny") == 0


class _TerminalStream(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("unit, total, shown", [("", 30, "8/30"), ("bytes", 3000, "27%")])
def test_progress_bar_keeps_its_numbers_on_a_phone_width_terminal(unit, total, shown):
    from offgrid.ui.output import Output

    stream = _TerminalStream()
    out = Output(stderr=stream)
    out.err.width = 40
    with out.progress("image 2/4 · 12.52 s/step", total=total, unit=unit) as bar:
        bar.update(completed=total * 8 // 30, total=total)
        bar._progress.refresh()
    plain = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", stream.getvalue())
    last = [line for line in re.split(r"[\r\n]", plain) if "━" in line][-1]
    assert shown in last and "…" not in last.split("━")[-1]
    assert len(last) <= 40





def test_models_rm_deletes_an_interrupted_pulls_partial_file() -> None:
    entry = catalog.load().get("whisper-tiny")
    file = entry.files[0]
    blobs = paths.hf_cache_dir() / ("models--" + entry.repo.replace("/", "--")) / "blobs"
    blobs.mkdir(parents=True)
    partial = blobs / f"{file.sha256}.incomplete"
    partial.write_bytes(b"\0" * 1234)
    other = blobs / ("0" * 64 + ".incomplete")  # another file's download is left alone
    other.write_bytes(b"\0")
    assert store.remove("whisper-tiny") == 1234
    assert not partial.exists() and other.exists()


def test_no_command_summary_in_help_is_cut_at_an_abbreviation() -> None:
    """Click cuts a command's one-line summary at the first '. ', so 'e.g.' leaves 'Set a
    default, e.g.' in `offgrid config --help`."""
    from offgrid.cli import full_command

    def walk(command, name):
        yield name, command
        for sub_name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, f"{name} {sub_name}")

    for name, command in walk(full_command(), "offgrid"):
        summary = command.get_short_help_str(limit=200)
        assert not summary.endswith(("e.g.", "i.e.")), f"{name}: {summary!r}"


def test_the_help_listing_says_what_each_command_says_of_itself() -> None:
    """`offgrid --help` lists COMMANDS' summaries without building the commands: each must be
    the first line of the command's own help."""
    from offgrid.cli import COMMANDS, build_command

    for name, summary in COMMANDS.items():
        assert build_command(name).help.strip().splitlines()[0] == summary, name


def test_config_set_any_text_reads_back_unchanged() -> None:
    """A value pasted with CR/LF, a tab, an escape sequence or DEL must not leave a config
    file that TOML (and so every later command) refuses."""
    text = 'Windows line\r\nnext\ttab "quoted" \\ \x1b[1m bold \x7f é 文'
    config.set_value("chat.system", text)
    assert config.load()["chat.system"] == text


def test_a_hand_edited_value_of_the_wrong_type_is_a_clear_error_that_set_can_repair() -> None:
    paths.private_dir(paths.config_dir())
    paths.config_file().write_text('[transcribe]\nthreads = "two"\n[history]\nenabled = "false"\n'
                                   '[chat]\ntemperature = 1\n')
    with pytest.raises(OffgridError, match="transcribe.threads must be int, not 'two'") as caught:
        config.load()
    assert caught.value.hint.startswith("offgrid config set transcribe.threads")
    config.set_value("transcribe.threads", "2")
    with pytest.raises(OffgridError, match="history.enabled must be bool"):  # not "truthy"
        config.load()
    assert config.unset_value("history.enabled")
    assert config.load() == {"transcribe.threads": 2, "chat.temperature": 1}  # an int is a float
