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


def _max_freqs(sys_cpu: Path) -> dict[int, int]:
    freqs: dict[int, int] = {}
    for cpu_dir in sys_cpu.glob("cpu[0-9]*"):
        try:
            freqs[int(cpu_dir.name[3:])] = int(
                (cpu_dir / "cpufreq" / "cpuinfo_max_freq").read_text().strip())
        except (OSError, ValueError):
            continue
    return freqs


def cpu_clusters(sys_cpu: Path = SYS_CPU) -> dict[int, list[int]]:
    """Core ids grouped by maximum frequency in MHz, slowest first ({} when /sys says nothing)."""
    clusters: dict[int, list[int]] = {}
    for cpu, khz in sorted(_max_freqs(sys_cpu).items()):
        clusters.setdefault(khz // 1000, []).append(cpu)
    return dict(sorted(clusters.items()))


def performance_cores(sys_cpu: Path = SYS_CPU) -> list[int]:
    """Core ids outside the slowest cluster on big.LITTLE chips; all cores elsewhere."""
    freqs = _max_freqs(sys_cpu)
    if len(set(freqs.values())) < 2:
        return sorted(freqs) if freqs else list(range(cpu_count()))
    slowest = min(freqs.values())
    return sorted(cpu for cpu, freq in freqs.items() if freq > slowest)


def default_threads(sys_cpu: Path = SYS_CPU) -> int:
    """Threads for generation: one per performance core, at least 1."""
    return max(1, min(len(performance_cores(sys_cpu)), cpu_count()))
