"""`offgrid doctor`: one screen that says whether offgrid will work here, and what to fix."""

from __future__ import annotations

import typer

from offgrid.ui import options
from offgrid.errors import ExitCode
from offgrid.lazy import lazy_import
from offgrid.ui.output import Output

diagnosis = lazy_import("offgrid.device.doctor")  # loaded when `offgrid doctor` runs


def doctor(json_: options.JsonOpt = False) -> None:
    """Check this device: engines, models, memory, storage, tools, and what to fix.

    Shows the platform, CPU cores, memory, free storage, installed engines, downloaded and
    recommended models. Exits 1 when something your setup needs is missing; each problem
    comes with the command that fixes it. Nothing goes online."""
    out = Output(plain=json_)
    report = diagnosis.diagnose()
    if json_:
        out.json(report.to_dict())
    else:
        for line in diagnosis.render(report):
            out.line(line)
    if not report.ok:
        raise typer.Exit(ExitCode.ERROR)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
