"""offgrid.lazy: modules that load on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest

from offgrid.lazy import lazy_import
from tests.conftest import ROOT


def test_already_imported_module_is_returned_as_is() -> None:
    assert lazy_import("json") is sys.modules["json"]


def test_missing_module_is_an_import_error() -> None:
    with pytest.raises(ModuleNotFoundError):
        lazy_import("offgrid.no_such_module")


def test_help_loads_no_document_parser_database_or_engine() -> None:
    code = ("import sys; from offgrid.cli import app\n"
            "try: app(['--help'], prog_name='offgrid')\n"
            "except SystemExit: pass\n"
            "heavy = ['pypdf', 'llama_cpp', 'stable_diffusion_cpp', 'pywhispercpp', 'numpy',"
            " 'rich.markdown', 'offgrid.inputs.documents', 'offgrid.models.hub']\n"
            "loaded = [m for m in heavy if m in sys.modules and "
            "type(sys.modules[m]).__name__ != '_LazyModule']\n"
            "print('loaded:' + ','.join(loaded), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "Usage: offgrid" in done.stdout
    assert done.stderr.strip().splitlines()[-1] == "loaded:"
