"""The shared command helpers for the phone: long_job (wake lock + notification), deliver."""

from __future__ import annotations

from pathlib import Path

import pytest

from offgrid import config
from offgrid.ui import phone as phone_helpers
from offgrid.errors import OffgridError
from offgrid.ui.output import Output
from tests.fakebin import FakeBin


@pytest.fixture
def phone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeBin:
    bins = FakeBin(tmp_path / "fake")
    for name in ("termux-wake-lock", "termux-wake-unlock", "termux-notification",
                 "termux-clipboard-set"):
        bins.add(name)
    monkeypatch.setenv("PATH", str(bins.dir))
    monkeypatch.setenv("TERMUX_VERSION", "0.118.1")
    return bins


def test_long_job_notifies_after_a_minute_then_releases_the_lock(phone: FakeBin) -> None:
    with phone_helpers.long_job(Output(), notify=True, title="offgrid summarize") as job:
        job.started -= 125  # as if it had run for two minutes
        job.done = "summary ready"
    names = [c["name"] for c in phone.calls()]
    assert names == ["termux-wake-lock", "termux-notification", "termux-wake-unlock"]
    assert phone.argv("termux-notification")[0][-4:] == [
        "--title", "offgrid summarize", "--content", "summary ready after 2 min 5 s"]


def test_short_job_or_notify_off_sends_nothing(phone: FakeBin) -> None:
    with phone_helpers.long_job(Output(), notify=True):
        pass
    with phone_helpers.long_job(Output(), notify=False) as job:
        job.started -= 600
    assert phone.calls("termux-notification") == []
    assert len(phone.calls("termux-wake-unlock")) == 2


def test_config_default_and_failure_notification(phone: FakeBin) -> None:
    config.set_value("general.notify", "true")
    with pytest.raises(OffgridError):
        with phone_helpers.long_job(Output()) as job:
            job.started -= 90
            raise OffgridError("engine crashed")
    assert phone.argv("termux-notification")[0][-1] == "failed after 1 min 30 s"
    assert phone.calls()[-1]["name"] == "termux-wake-unlock"


def test_ctrl_c_still_releases_and_says_stopped(phone: FakeBin) -> None:
    with pytest.raises(KeyboardInterrupt):
        with phone_helpers.long_job(Output(), notify=True) as job:
            job.started -= 61
            raise KeyboardInterrupt
    assert phone.argv("termux-notification")[0][-1] == "stopped after 1 min 1 s"
    assert [c["name"] for c in phone.calls()][::2] == ["termux-wake-lock", "termux-wake-unlock"]


def test_a_failing_notification_is_only_a_warning(phone: FakeBin, capsys) -> None:
    phone.add("termux-notification", stderr="no app", code=1)
    with phone_helpers.long_job(Output(), notify=True) as job:
        job.started -= 100
    assert "warning: no notification" in capsys.readouterr().err


def test_deliver_writes_and_copies(phone: FakeBin, capsys) -> None:
    phone_helpers.deliver(Output(plain=True), "the answer", copy=True, write=True)
    captured = capsys.readouterr()
    assert captured.out == "the answer\n"
    assert "copied to the clipboard" in captured.err
    assert phone.calls("termux-clipboard-set")[0]["stdin"] == "the answer"
