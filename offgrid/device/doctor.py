"""`offgrid doctor`: will offgrid work on this device, and how fast? Everything is read from
the device itself (/proc, /sys, the model cache, installed package metadata): no network and no
engine import. Each problem carries the exact command that fixes it."""

from __future__ import annotations

import os
import platform
import shutil
import sqlite3
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from offgrid import config, device
from offgrid.device import paths, termux
from offgrid.engines import native
from offgrid.errors import OffgridError
from offgrid.models import catalog, store

# task -> (engine key, the config sections of the commands that use it)
TASKS: dict[str, tuple[str, tuple[str, ...]]] = {
    "text": ("llama", ("chat", "summarize")),
    "vision": ("llama", ("see",)),
    "image": ("sd", ("imagine",)),
    "speech": ("whisper", ("transcribe",)),
}
LOW_DISK_BYTES = 2 * 10**9


@dataclass
class Problem:
    """Something missing: *required* ones (what the config needs) make doctor exit 1."""

    what: str
    fix: str
    required: bool = False


@dataclass
class Report:
    platform: dict[str, Any]
    cpu: dict[str, Any]
    memory: dict[str, Any]
    storage: dict[str, Any]
    engines: dict[str, dict[str, Any]]
    models: dict[str, list[dict[str, Any]]]
    recommended: dict[str, str]
    tools: dict[str, bool]
    tasks_in_use: list[str]
    problems: list[Problem] = field(default_factory=list)
    server: str | None = None  # config general.server: where chat/summarize/see send text

    @property
    def ok(self) -> bool:
        return not any(p.required for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        return data


def install_command(package: str) -> str:
    """How to install a system package here."""
    if device.is_termux():
        return f"pkg install {package}"
    if termux.is_macos():
        return f"brew install {package}"
    return f"sudo apt install {package}"


def android_version() -> str | None:
    """Android's release number through `getprop`, when there is one."""
    exe = shutil.which("getprop")
    if exe is None:
        return None
    try:
        proc = subprocess.run([exe, "ro.build.version.release"], capture_output=True, text=True,
                              timeout=3, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() or None


def platform_info() -> dict[str, Any]:
    return {"termux": device.is_termux(), "termux_version": os.environ.get("TERMUX_VERSION"),
            "android": android_version(), "system": platform.system(),
            "machine": platform.machine(), "python": platform.python_version()}


def cpu_info(sys_cpu: Path = device.SYS_CPU) -> dict[str, Any]:
    """Core count, the performance cores, and the clusters by maximum frequency (MHz)."""
    clusters = device.cpu_clusters(sys_cpu)
    return {"cores": sum(map(len, clusters.values())) or device.cpu_count(),
            "performance_cores": device.performance_cores(sys_cpu),
            "clusters_mhz": {str(mhz): cpus for mhz, cpus in clusters.items()},
            "threads": device.default_threads(sys_cpu)}


def memory_info(meminfo: Path = device.PROC_MEMINFO) -> dict[str, Any]:
    return {"total_mb": device.total_ram_mb(meminfo),
            "available_mb": device.available_ram_mb(meminfo)}


def storage_info(where: Path | None = None) -> dict[str, Any]:
    """Free space on the disk that holds the model cache (its nearest existing folder)."""
    where = where or paths.hf_cache_dir()
    probe = where
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        free = None
    return {"models_dir": str(where), "free_bytes": free}


def engine_info() -> dict[str, dict[str, Any]]:
    """Installed engine bindings and versions, from package metadata (nothing is imported)."""
    return {key: {"package": package, "version": native.engine_version(key),
                  "install": f"pip install 'offgrid[{extra}]'"}
            for key, (extra, package, _module) in native.ENGINES.items()}


def cached_models() -> dict[str, list[dict[str, Any]]]:
    by_task: dict[str, list[dict[str, Any]]] = {task: [] for task in catalog.TASKS}
    for row in store.list_catalog():
        if row["cached"]:
            by_task.setdefault(str(row["task"]), []).append(
                {"alias": row["alias"], "size": row["size_on_disk"]})
    return by_task


def recommended_models(ram_mb: int | None) -> dict[str, str]:
    cat = catalog.load()
    result = {}
    for task in catalog.TASKS:
        try:
            result[task] = cat.default_for(task, ram_mb=ram_mb).alias
        except KeyError:
            continue
    return result


def tool_info() -> dict[str, bool]:
    tools = {"ffmpeg": termux.have("ffmpeg")}
    if device.is_termux():
        tools["termux-api"] = termux.have("termux-clipboard-get")
        tools["storage"] = termux.storage_linked()
    return tools


def tasks_in_use(conf: dict[str, Any], models: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Text always; another task once the config mentions its command or one of its models
    is downloaded."""
    used = []
    for task, (_engine, sections) in TASKS.items():
        configured = any(key.split(".")[0] in sections for key in conf)
        if task == "text" or configured or models.get(task):
            used.append(task)
    return used


def find_problems(report: Report, conf: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    for task in report.tasks_in_use:
        engine = report.engines[TASKS[task][0]]
        if engine["version"] is None:
            problems.append(Problem(f"the {engine['package']} engine ({task}) is not installed",
                                    engine["install"], required=True))
        problems += _model_problems(task, report, conf)
    problems += _tool_problems(report, conf)
    free = report.storage["free_bytes"]
    if free is not None and free < LOW_DISK_BYTES:
        problems.append(Problem(f"only {store.human_size(free)} free for models",
                                "offgrid models list  (then: offgrid models rm ALIAS)"))
    return problems


def _model_problems(task: str, report: Report, conf: dict[str, Any]) -> list[Problem]:
    """The model each command of *task* is configured with must be on disk."""
    problems = []
    wanted = {conf[f"{s}.model"] for s in TASKS[task][1] if conf.get(f"{s}.model")}
    for spec in sorted(wanted):
        try:
            store.resolve(spec, task)
        except OffgridError as exc:
            problems.append(Problem(f"configured model: {exc.message}",
                                    exc.hint or "offgrid config show", required=True))
    if not wanted and not report.models.get(task):
        alias = report.recommended.get(task)
        if alias:
            problems.append(Problem(f"no {task} model is downloaded",
                                    f"offgrid models pull {alias}", required=True))
    return problems


def _tool_problems(report: Report, conf: dict[str, Any]) -> list[Problem]:
    problems = []
    tools = report.tools
    if not tools["ffmpeg"]:
        problems.append(Problem("ffmpeg is missing (needed for mp3/m4a/video audio)",
                                install_command("ffmpeg"),
                                required="speech" in report.tasks_in_use))
    notify = bool(conf.get("general.notify"))
    if "termux-api" in tools and not tools["termux-api"]:
        problems.append(Problem("Termux:API is missing (clipboard, notify, mic, camera)",
                                "pkg install termux-api  (and the Termux:API app)",
                                required=notify))
    if "storage" in tools and not tools["storage"]:
        problems.append(Problem("Termux cannot read shared storage (Downloads, DCIM)",
                                "termux-setup-storage"))
    if not device.is_termux() and notify and not (termux.have("notify-send")
                                                  or termux.is_macos()):
        problems.append(Problem("notifications are on but notify-send is missing",
                                install_command("libnotify-bin"), required=True))
    return problems


def _config_or_problem() -> tuple[dict[str, Any], list[Problem]]:
    try:
        return config.load(), []
    except OffgridError as exc:
        return {}, [Problem(exc.message, exc.hint or "offgrid config path", required=True)]


def _history_problem() -> list[Problem]:
    """An unreadable history database is a problem (checked read-only, never created)."""
    db = paths.history_db()
    if not db.exists():
        return []
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=2)
        try:
            conn.execute("PRAGMA quick_check").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return [Problem(f"the history database is unreadable ({exc})",
                        f"mv {db} {db}.broken", required=True)]
    return []


def diagnose(*, sys_cpu: Path = device.SYS_CPU,
             meminfo: Path = device.PROC_MEMINFO) -> Report:
    """Gather everything `offgrid doctor` shows."""
    conf, problems = _config_or_problem()
    memory = memory_info(meminfo)
    models = cached_models()
    report = Report(platform=platform_info(), cpu=cpu_info(sys_cpu), memory=memory,
                    storage=storage_info(), engines=engine_info(), models=models,
                    recommended=recommended_models(memory["total_mb"]), tools=tool_info(),
                    tasks_in_use=tasks_in_use(conf, models), server=conf.get("general.server"))
    report.problems = problems + find_problems(report, conf) + _history_problem()
    return report


def describe_platform(info: dict[str, Any]) -> str:
    if info["termux"]:
        android = f" on Android {info['android']}" if info["android"] else " on Android"
        version = f" {info['termux_version']}" if info["termux_version"] else ""
        return f"Termux{version}{android} ({info['machine']})"
    return f"{info['system']} {info['machine']}, Python {info['python']}"


def describe_cpu(info: dict[str, Any]) -> list[str]:
    """Two short lines: the cores by speed, then the threads offgrid will use."""
    clusters = ", ".join(f"{len(cpus)}×{int(mhz) / 1000:.1f} GHz"
                         for mhz, cpus in info["clusters_mhz"].items())
    return [f"{info['cores']} cores" + (f": {clusters}" if clusters else ""),
            f"{info['threads']} threads, on performance cores "
            f"{_ranges(info['performance_cores'])}"]


def _ranges(ids: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5'."""
    groups: list[list[int]] = []
    for cpu in sorted(ids):
        if groups and groups[-1][-1] == cpu - 1:
            groups[-1].append(cpu)
        else:
            groups.append([cpu])
    return ",".join(f"{g[0]}-{g[-1]}" if len(g) > 1 else str(g[0]) for g in groups) or "?"


def _size(n: int | None) -> str:
    return store.human_size(n) if n is not None else "?"


def render(report: Report) -> list[str]:
    """The report as short lines (label, then value) that fit a phone held upright."""
    mem, disk = report.memory, report.storage
    lines = [f"platform  {describe_platform(report.platform)}",
             f"cpu       {describe_cpu(report.cpu)[0]}",
             f"          {describe_cpu(report.cpu)[1]}",
             f"memory    {_mb(mem['total_mb'])} total, {_mb(mem['available_mb'])} available",
             f"storage   {_size(disk['free_bytes'])} free for models",
             f"          in {disk['models_dir']}",
             "engines"]
    for engine in report.engines.values():
        lines.append(f"  {engine['package']}  {engine['version'] or 'not installed'}")
    lines.append("models (downloaded)")
    for task, rows in report.models.items():
        names = ", ".join(f"{r['alias']} {_size(r['size'])}" for r in rows) or "none"
        lines.append(f"  {task:<7} {names}")
    lines.append("recommended for this memory")
    lines += [f"  {task:<7} {alias}" for task, alias in report.recommended.items()]
    tools = ", ".join(f"{name} {'yes' if ok else 'no'}" for name, ok in report.tools.items())
    lines.append(f"tools     {tools}")
    if report.server:  # the one setting that sends text off the device
        lines += ["network   chat, summarize, see send text to", f"          {report.server}"]
    else:
        lines.append("network   none, unless you pull or name a --server")
    if not report.problems:
        lines += ["", "ok: everything offgrid needs here is in place"]
    for problem in report.problems:
        mark = "✗" if problem.required else "!"
        lines += ["", f"{mark} {problem.what}", f"  fix: {problem.fix}"]
    return lines


def _mb(value: int | None) -> str:
    return f"{value / 1024:.1f} GB" if value else "?"
