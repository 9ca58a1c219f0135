"""offgrid.device.doctor on fake /proc and /sys trees, with engines and tools "missing"."""

from __future__ import annotations

from pathlib import Path

import pytest

from offgrid import config, device
from offgrid.device import doctor
from offgrid.engines import native
from tests.fakebin import FakeBin

MEMINFO = "MemTotal:        7864320 kB\nMemFree:          512000 kB\nMemAvailable:    3145728 kB\n"
# a phone: 4 little cores at 1.8 GHz, 3 big at 2.4 GHz, 1 prime at 3.0 GHz
FREQS = [1800000] * 4 + [2400000] * 3 + [3000000]


@pytest.fixture
def fake_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    monkeypatch.setattr(device, "cpu_count", lambda: len(FREQS))
    meminfo = tmp_path / "proc" / "meminfo"
    meminfo.parent.mkdir()
    meminfo.write_text(MEMINFO)
    sys_cpu = tmp_path / "sys" / "cpu"
    for cpu, khz in enumerate(FREQS):
        freq = sys_cpu / f"cpu{cpu}" / "cpufreq"
        freq.mkdir(parents=True)
        (freq / "cpuinfo_max_freq").write_text(f"{khz}\n")
    (sys_cpu / "cpufreq").mkdir()  # not a core
    return meminfo, sys_cpu


@pytest.fixture
def phone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeBin:
    """Termux with `getprop`, without Termux:API, ffmpeg or the storage link."""
    bins = FakeBin(tmp_path / "fake")
    bins.add("getprop", stdout="14\n")
    monkeypatch.setenv("PATH", str(bins.dir))
    monkeypatch.setenv("TERMUX_VERSION", "0.118.1")
    monkeypatch.setenv("HOME", str(tmp_path / "termux-home"))
    return bins


def test_phone_facts_from_proc_and_sys(fake_device, phone: FakeBin, tmp_path: Path) -> None:
    meminfo, sys_cpu = fake_device
    report = doctor.diagnose(sys_cpu=sys_cpu, meminfo=meminfo)
    assert report.platform["termux"] and report.platform["android"] == "14"
    assert phone.argv("getprop") == [["ro.build.version.release"]]
    assert report.cpu["cores"] == 8
    assert report.cpu["performance_cores"] == [4, 5, 6, 7]
    assert report.cpu["clusters_mhz"] == {"1800": [0, 1, 2, 3], "2400": [4, 5, 6], "3000": [7]}
    assert report.memory == {"total_mb": 7680, "available_mb": 3072}
    lines = doctor.render(report)
    assert "platform  Termux 0.118.1 on Android 14" in lines[0]
    assert lines[1] == "cpu       8 cores: 4×1.8 GHz, 3×2.4 GHz, 1×3.0 GHz"
    assert lines[2] == "          4 threads, on performance cores 4-7"
    assert lines[3].startswith("memory    7.5 GB total, 3.0 GB available")
    assert max(len(line) for line in lines if str(tmp_path) not in line) <= 56  # phone width


def test_termux_problems_come_with_their_fix(fake_device, phone: FakeBin) -> None:
    meminfo, sys_cpu = fake_device
    report = doctor.diagnose(sys_cpu=sys_cpu, meminfo=meminfo)
    fixes = {p.fix: p for p in report.problems}
    assert "pkg install ffmpeg" in fixes and not fixes["pkg install ffmpeg"].required
    assert "termux-setup-storage" in fixes
    api = next(p for p in report.problems if "Termux:API" in p.what)
    assert api.fix.startswith("pkg install termux-api") and not api.required
    model = next(p for p in report.problems if "no text model" in p.what)
    assert model.required and model.fix == f"offgrid models pull {report.recommended['text']}"
    assert not report.ok
    config.set_value("general.notify", "true")  # now Termux:API is something the config needs
    report = doctor.diagnose(sys_cpu=sys_cpu, meminfo=meminfo)
    assert next(p for p in report.problems if "Termux:API" in p.what).required


def test_recommendation_follows_memory(tmp_path: Path, fake_device) -> None:
    _, sys_cpu = fake_device
    small = tmp_path / "small"
    small.write_text("MemTotal: 2097152 kB\nMemAvailable: 1048576 kB\n")
    big = doctor.diagnose(sys_cpu=sys_cpu, meminfo=fake_device[0]).recommended["text"]
    little = doctor.diagnose(sys_cpu=sys_cpu, meminfo=small).recommended["text"]
    assert big != little


def test_engines_missing(monkeypatch: pytest.MonkeyPatch, tiny_llama: Path) -> None:
    monkeypatch.setattr(native, "engine_version", lambda key: None)
    config.set_value("chat.model", str(tiny_llama))
    report = doctor.diagnose()
    assert report.engines["llama"]["version"] is None
    (problem,) = [p for p in report.problems if p.required]
    assert problem.what == "the llama-cpp-python engine (text) is not installed"
    assert problem.fix == "pip install 'offgrid[chat]'"
    assert "  llama-cpp-python  not installed" in doctor.render(report)


def test_tasks_in_use_decide_what_is_required(monkeypatch: pytest.MonkeyPatch,
                                              tiny_llama: Path) -> None:
    monkeypatch.setattr(native, "engine_version",
                        lambda key: None if key == "whisper" else "1.0")
    config.set_value("chat.model", str(tiny_llama))
    assert doctor.diagnose().ok  # speech unused: a missing whisper engine is fine
    config.set_value("transcribe.language", "de")
    report = doctor.diagnose()
    assert "speech" in report.tasks_in_use and not report.ok
    assert "pip install 'offgrid[transcribe]'" in [p.fix for p in report.problems if p.required]


def test_missing_configured_model_and_broken_files(tmp_path: Path) -> None:
    config.set_value("chat.model", str(tmp_path / "gone.gguf"))
    report = doctor.diagnose()
    problem = next(p for p in report.problems if "configured model" in p.what)
    assert problem.required and "gone.gguf" in problem.what
    config.set_value("chat.model", "qwen3-0.6b")
    problem = next(p for p in doctor.diagnose().problems if "configured model" in p.what)
    assert problem.fix == "offgrid models pull qwen3-0.6b"


def test_corrupt_history_and_config_are_problems(tmp_path: Path) -> None:
    from offgrid.device import paths

    paths.private_dir(paths.history_db().parent)
    paths.history_db().write_bytes(b"this is not a database" * 100)
    paths.config_file().write_text("[chat\nmodel=")
    report = doctor.diagnose()
    whats = [p.what for p in report.problems if p.required]
    assert any("history database is unreadable" in w for w in whats)
    assert any("malformed" in w for w in whats)
    assert f"mv {paths.history_db()} {paths.history_db()}.broken" in [
        p.fix for p in report.problems]
