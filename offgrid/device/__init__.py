"""Facts about this device: memory, CPU cores, Termux or not."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

PROC_MEMINFO = Path("/proc/meminfo")
SYS_CPU = Path("/sys/devices/system/cpu")


def is_termux() -> bool:
    """True inside Termux on Android."""
    return "com.termux" in os.environ.get("PREFIX", "") or "TERMUX_VERSION" in os.environ


def _meminfo(meminfo: Path = PROC_MEMINFO) -> dict[str, int]:
    values: dict[str, int] = {}
    try:
        for line in meminfo.read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                values[key] = int(parts[0])  # kB
    except OSError:
        pass
    return values


def _sysctl_int(name: str) -> int | None:
    try:
        out = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=2)
        return int(out.stdout.strip())
    except (OSError, ValueError, subprocess.SubprocessError):
        return None


def total_ram_mb(meminfo: Path = PROC_MEMINFO) -> int | None:
    """Physical memory in MiB, or None when it cannot be read."""
    kb = _meminfo(meminfo).get("MemTotal")
    if kb:
        return kb // 1024
    if platform.system() == "Darwin":
        size = _sysctl_int("hw.memsize")
        return size // (1 << 20) if size else None
    return None


def available_ram_mb(meminfo: Path = PROC_MEMINFO) -> int | None:
    """Memory available for a new process in MiB (MemAvailable), or None."""
    info = _meminfo(meminfo)
    if "MemAvailable" in info:
        return info["MemAvailable"] // 1024
    if "MemFree" in info:
        return (info["MemFree"] + info.get("Cached", 0)) // 1024
    return total_ram_mb(meminfo)


def cpu_count() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def parse_cpu_list(text: str) -> list[int]:
    """`0-3,6` (the kernel's cpu list format) -> [0, 1, 2, 3, 6]."""
    cpus: list[int] = []
    for part in text.strip().split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            cpus.extend(range(int(low), int(high or low) + 1))
        except ValueError:
            return []
    return cpus


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def online_cores(sys_cpu: Path = SYS_CPU) -> list[int]:
    """Core ids that are online (hot-unplugged cores are listed in sysfs but cannot run)."""
    try:
        online = parse_cpu_list((sys_cpu / "online").read_text())
    except OSError:
        online = []
    if online:
        return online
    cores = []
    for cpu_dir in sys_cpu.glob("cpu[0-9]*"):
        if cpu_dir.name[3:].isdigit() and _read_int(cpu_dir / "online") != 0:
            cores.append(int(cpu_dir.name[3:]))
    return sorted(cores)


def _core_speeds(sys_cpu: Path, cores: list[int]) -> dict[int, int]:
    """Max frequency (cpufreq) of the cores that report one; when some do not (driver not up
    yet), the scheduler's cpu_capacity (ARM EAS) if every core has it, as the two units do
    not compare."""
    freqs = {cpu: _read_int(sys_cpu / f"cpu{cpu}" / "cpufreq" / "cpuinfo_max_freq")
             for cpu in cores}
    if all(freqs.values()):
        return freqs  # type: ignore[return-value]
    capacity = {cpu: _read_int(sys_cpu / f"cpu{cpu}" / "cpu_capacity") for cpu in cores}
    if all(capacity.values()):
        return capacity  # type: ignore[return-value]
    return {cpu: freq for cpu, freq in freqs.items() if freq}


def _clusters(speeds: dict[int, int], tolerance: float = 0.05) -> list[list[int]]:
    """Cores grouped by speed, slowest group first; speeds within *tolerance* of the group's
    slowest are one group (favoured-core binning, e.g. Intel Turbo Boost Max 3.0)."""
    groups: list[list[int]] = []
    base = 0
    for cpu in sorted(speeds, key=lambda c: (speeds[c], c)):
        if groups and speeds[cpu] <= base * (1 + tolerance):
            groups[-1].append(cpu)
        else:
            groups.append([cpu])
            base = speeds[cpu]
    return groups


def cpu_clusters(sys_cpu: Path = SYS_CPU) -> dict[int, list[int]]:
    """Online core ids grouped by maximum frequency in MHz, slowest first ({} when /sys says
    nothing)."""
    clusters: dict[int, list[int]] = {}
    for cpu in online_cores(sys_cpu):
        khz = _read_int(sys_cpu / f"cpu{cpu}" / "cpufreq" / "cpuinfo_max_freq")
        if khz:
            clusters.setdefault(khz // 1000, []).append(cpu)
    return dict(sorted(clusters.items()))


def performance_cores(sys_cpu: Path = SYS_CPU) -> list[int]:
    """Online core ids outside the slowest cluster on big.LITTLE chips; all cores elsewhere.

    Clusters come from cpuinfo_max_freq (or cpu_capacity when a core has no cpufreq):
    4+3+1 -> the 3+1, 6 little + 2 big -> the 2; a core with neither counts as fast. Without
    sysfs (macOS, sandboxes) every core this process may use counts.
    """
    cores = online_cores(sys_cpu)
    if not cores:
        return list(range(cpu_count()))
    speeds = _core_speeds(sys_cpu, cores)
    groups = _clusters(speeds)
    if len(groups) < 2:
        return cores
    unknown = [cpu for cpu in cores if cpu not in speeds]  # no speed to rank: assume fast
    return sorted([cpu for group in groups[1:] for cpu in group] + unknown)


def default_threads(sys_cpu: Path = SYS_CPU, available: int | None = None) -> int:
    """Threads for generation: one per performance core, at most the cores this process may
    use (*available*, default: its affinity), at least 1."""
    return max(1, min(len(performance_cores(sys_cpu)), available or cpu_count()))
