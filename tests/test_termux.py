"""offgrid.device.termux against fake Termux:API and desktop programs on PATH."""

from __future__ import annotations

from pathlib import Path

import pytest

from offgrid.device import termux
from offgrid.errors import OffgridError
from tests.fakebin import FakeBin


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeBin:
    """Only the fake programs are on PATH; not Termux, not macOS, not Wayland."""
    bins = FakeBin(tmp_path / "fake")
    monkeypatch.setenv("PATH", str(bins.dir))
    monkeypatch.delenv("TERMUX_VERSION", raising=False)
    monkeypatch.setenv("PREFIX", "/usr")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(termux, "is_macos", lambda: False)
    return bins


@pytest.fixture
def on_termux(fake: FakeBin, monkeypatch: pytest.MonkeyPatch) -> FakeBin:
    monkeypatch.setenv("TERMUX_VERSION", "0.118.1")
    monkeypatch.setenv("PREFIX", "/data/data/com.termux/files/usr")
    return fake


def test_termux_clipboard_get_and_set(on_termux: FakeBin) -> None:
    on_termux.add("termux-clipboard-get", stdout="from the phone")
    on_termux.add("termux-clipboard-set")
    assert termux.clipboard_get() == "from the phone"
    termux.clipboard_set("answer ✓")
    assert on_termux.argv("termux-clipboard-get") == [[]]
    (call,) = on_termux.calls("termux-clipboard-set")
    assert call["args"] == [] and call["stdin"] == "answer ✓"


def test_missing_termux_api_package_names_the_fix(on_termux: FakeBin) -> None:
    with pytest.raises(OffgridError) as info:
        termux.clipboard_get()
    assert "termux-clipboard-get" in info.value.message
    assert "pkg install termux-api" in (info.value.hint or "")


def test_missing_app_times_out_with_a_hint(on_termux: FakeBin) -> None:
    on_termux.add("termux-clipboard-get", sleep=30)  # what the command does without the app
    with pytest.raises(OffgridError) as info:
        termux.clipboard_get(timeout=0.5)
    assert "did not answer" in info.value.message
    assert "Termux:API app" in (info.value.hint or "")


def test_failure_reports_the_last_stderr_line(on_termux: FakeBin) -> None:
    on_termux.add("termux-notification", stderr="warming up\nPermission denied\n", code=1)
    with pytest.raises(OffgridError, match="Permission denied"):
        termux.notify("offgrid", "done")


def test_termux_notification_open_and_photo_arguments(on_termux: FakeBin, tmp_path: Path) -> None:
    on_termux.add("termux-notification")
    on_termux.add("termux-open")
    on_termux.add("termux-camera-photo", action="open(args[-1], 'wb').write(b'\\xff\\xd8jpeg')")
    termux.notify("summary ready", "contract.pdf, 3 min")
    image = tmp_path / "cat.png"
    image.write_bytes(b"png")
    termux.open_file(image)
    photo = termux.take_photo(tmp_path / "shot.jpg", camera=1)
    assert on_termux.argv("termux-notification") == [
        ["--id", "offgrid", "--title", "summary ready", "--content", "contract.pdf, 3 min"]]
    assert on_termux.argv("termux-open") == [[str(image)]]
    assert on_termux.argv("termux-camera-photo") == [["-c", "1", str(photo)]]
    assert photo.read_bytes().startswith(b"\xff\xd8")


def test_photo_without_a_picture_is_an_error(on_termux: FakeBin, tmp_path: Path) -> None:
    on_termux.add("termux-camera-photo")
    with pytest.raises(OffgridError, match="no picture"):
        termux.take_photo(tmp_path / "none.jpg")






def test_wake_lock_released_on_error_and_ctrl_c(on_termux: FakeBin) -> None:
    on_termux.add("termux-wake-lock")
    on_termux.add("termux-wake-unlock")
    for exc in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(exc)):
            with termux.wake_lock() as held:
                assert held
                raise exc
    names = [c["name"] for c in on_termux.calls()]
    assert names == ["termux-wake-lock", "termux-wake-unlock"] * 2


def test_wake_lock_is_a_no_op_when_missing_or_off_termux(fake: FakeBin,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    fake.add("termux-wake-lock")
    with termux.wake_lock() as held:  # not Termux
        assert not held
    monkeypatch.setenv("TERMUX_VERSION", "1")
    (fake.dir / "termux-wake-lock").unlink()
    with termux.wake_lock() as held:  # Termux without the tool
        assert not held
    assert fake.calls() == []


def test_desktop_clipboard_prefers_wayland_then_x11(fake: FakeBin,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    fake.add("xclip", stdout="x11 text")
    fake.add("wl-paste", stdout="wayland text")
    fake.add("wl-copy")
    assert termux.clipboard_get() == "x11 text"
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    assert termux.clipboard_get() == "wayland text"
    termux.clipboard_set("hi")
    assert fake.argv("xclip") == [["-selection", "clipboard", "-o"]]
    assert fake.argv("wl-paste") == [["--no-newline"]]
    assert fake.calls("wl-copy")[0]["stdin"] == "hi"


def test_desktop_xsel_and_notify_send(fake: FakeBin, tmp_path: Path) -> None:
    fake.add("xsel")
    fake.add("notify-send")
    fake.add("xdg-open")
    termux.clipboard_set("copied")
    termux.notify("done", "it took 2 min")
    (tmp_path / "a.txt").write_text("x")
    termux.open_file(tmp_path / "a.txt")
    assert fake.calls("xsel")[0]["args"] == ["--clipboard", "--input"]
    assert fake.calls("xsel")[0]["stdin"] == "copied"
    assert fake.argv("notify-send") == [["--app-name=offgrid", "done", "it took 2 min"]]
    assert fake.argv("xdg-open") == [[str(tmp_path / "a.txt")]]


def test_desktop_without_tools_fails_in_one_line(fake: FakeBin, tmp_path: Path) -> None:
    with pytest.raises(OffgridError) as info:
        termux.clipboard_set("x")
    assert info.value.message == "the clipboard needs one of: xclip / xsel / wl-copy"
    with pytest.raises(OffgridError, match="needs Termux"):
        termux.take_photo(tmp_path / "p.jpg")


def test_macos_uses_pbcopy_and_open(fake: FakeBin, monkeypatch: pytest.MonkeyPatch,
                                    tmp_path: Path) -> None:
    monkeypatch.setattr(termux, "is_macos", lambda: True)
    fake.add("pbpaste", stdout="mac")
    fake.add("open")
    fake.add("osascript")
    assert termux.clipboard_get() == "mac"
    (tmp_path / "p.png").write_bytes(b"png")
    termux.open_file(tmp_path / "p.png")
    termux.notify('say "hi"', "done")
    assert fake.argv("open") == [[str(tmp_path / "p.png")]]
    assert fake.argv("osascript") == [
        ["-e", 'display notification "done" with title "say \\"hi\\""']]


def test_shared_storage(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert not termux.storage_linked()
    with pytest.raises(OffgridError) as info:
        termux.shared_storage()
    assert info.value.hint and "termux-setup-storage" in info.value.hint
    (tmp_path / "shared-real").mkdir()
    (tmp_path / "storage").mkdir()
    (tmp_path / "storage" / "shared").symlink_to(tmp_path / "shared-real")
    assert termux.shared_storage() == tmp_path / "storage" / "shared"



