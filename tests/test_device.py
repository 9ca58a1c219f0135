"""Thread selection on fake /sys/devices/system/cpu trees of real phone and PC layouts."""

from __future__ import annotations

from pathlib import Path

from offgrid import device

GHZ = 1_000_000  # cpuinfo_max_freq is in kHz


def fake_sys(root: Path, freqs: list[int | None], *, online: str | None = None,
             capacity: list[int] | None = None, offline: tuple[int, ...] = ()) -> Path:
    """cpuN/cpufreq/cpuinfo_max_freq for each freq (None: no cpufreq dir), optional
    cpu_capacity, per-core online files and the global online list."""
    for i, freq in enumerate(freqs):
        core = root / f"cpu{i}"
        core.mkdir(parents=True)
        if freq is not None:
            (core / "cpufreq").mkdir()
            (core / "cpufreq" / "cpuinfo_max_freq").write_text(f"{freq}\n")
        if capacity:
            (core / "cpu_capacity").write_text(f"{capacity[i]}\n")
        if i:
            (core / "online").write_text("0\n" if i in offline else "1\n")
    (root / "cpufreq").mkdir()  # sysfs has non-core entries too
    (root / "cpuidle").mkdir()
    if online is not None:
        (root / "online").write_text(online + "\n")
    return root


def test_parse_cpu_list() -> None:
    assert device.parse_cpu_list("0-3,6\n") == [0, 1, 2, 3, 6]
    assert device.parse_cpu_list("0") == [0]
    assert device.parse_cpu_list("junk") == []


def test_4_3_1_uses_the_mid_and_prime_cores(tmp_path: Path) -> None:
    # Snapdragon 888: 4x A55 1.8 GHz, 3x A78 2.42 GHz, 1x X1 2.84 GHz
    sys_cpu = fake_sys(tmp_path, [1_804_800] * 4 + [2_419_200] * 3 + [2_841_600], online="0-7")
    assert device.performance_cores(sys_cpu) == [4, 5, 6, 7]
    assert device.default_threads(sys_cpu, available=8) == 4


def test_6_2_uses_the_two_big_cores_even_when_clocks_are_close(tmp_path: Path) -> None:
    # Helio G99: 2x A76 2.2 GHz (cpu6-7), 6x A55 2.0 GHz
    sys_cpu = fake_sys(tmp_path, [2_000_000] * 6 + [2_200_000] * 2, online="0-7")
    assert device.performance_cores(sys_cpu) == [6, 7]
    assert device.default_threads(sys_cpu, available=8) == 2


def test_binned_clocks_are_one_cluster(tmp_path: Path) -> None:
    # Intel Turbo Boost Max 3.0: two favoured cores clock 2 % higher, same cores
    sys_cpu = fake_sys(tmp_path, [5_000_000] * 6 + [5_100_000] * 2)
    assert device.performance_cores(sys_cpu) == list(range(8))


def test_uniform_cores_all_count(tmp_path: Path) -> None:
    sys_cpu = fake_sys(tmp_path, [2 * GHZ] * 4, online="0-3")
    assert device.performance_cores(sys_cpu) == [0, 1, 2, 3]


def test_offline_cores_are_left_out(tmp_path: Path) -> None:
    # 6+2 with one big core hot-unplugged (global online list, and per-core files alone)
    freqs = [2 * GHZ] * 6 + [3 * GHZ] * 2
    listed = fake_sys(tmp_path / "a", freqs, online="0-6", offline=(7,))
    assert device.performance_cores(listed) == [6]
    per_core = fake_sys(tmp_path / "b", freqs, offline=(7,))
    assert device.performance_cores(per_core) == [6]


def test_a_core_without_cpufreq_falls_back_to_capacity(tmp_path: Path) -> None:
    # 4+3+1 where the prime core's cpufreq is missing; the scheduler's capacities settle it
    freqs: list[int | None] = [1_800_000] * 4 + [2_400_000] * 3 + [None]
    capacity = [325] * 4 + [870] * 3 + [1024]
    with_capacity = fake_sys(tmp_path / "a", freqs, online="0-7", capacity=capacity)
    assert device.performance_cores(with_capacity) == [4, 5, 6, 7]
    # no capacity either: the unknown core is assumed fast rather than dropped
    without = fake_sys(tmp_path / "b", freqs, online="0-7")
    assert device.performance_cores(without) == [4, 5, 6, 7]


def test_capacity_alone_and_no_sysfs(tmp_path: Path) -> None:
    capacity_only = fake_sys(tmp_path / "a", [None] * 8, online="0-7",
                             capacity=[160] * 6 + [1024] * 2)
    assert device.performance_cores(capacity_only) == [6, 7]
    nothing = fake_sys(tmp_path / "b", [None] * 4, online="0-3")
    assert device.performance_cores(nothing) == [0, 1, 2, 3]
    missing = tmp_path / "absent"
    assert device.performance_cores(missing) == list(range(device.cpu_count()))
    assert device.default_threads(missing) >= 1


def test_threads_never_exceed_the_cores_this_process_may_use(tmp_path: Path) -> None:
    sys_cpu = fake_sys(tmp_path, [2 * GHZ] * 8, online="0-7")
    assert device.default_threads(sys_cpu, available=2) == 2
