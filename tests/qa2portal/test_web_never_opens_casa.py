"""The web process never imports CASA: pages read artifacts and rows, workers run CASA."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_loading_every_url_and_view_imports_no_casa_module():
    code = (
        "import django, sys, pkgutil, importlib\n"
        "django.setup()\n"
        "from django.urls import get_resolver\n"
        "get_resolver().url_patterns\n"
        "for app in ('assignments', 'calibration', 'reports', 'qa2portal'):\n"
        "    package = importlib.import_module(app)\n"
        "    for info in pkgutil.walk_packages(package.__path__, app + '.'):\n"
        "        if '.incasa' in info.name or '.simulate.' in info.name and info.name.rsplit('.', 1)[1] in "
        "('builder', 'atmosphere', 'visibilities', 'faults', 'subtables', 'asdm'):\n"
        "            continue  # code that only runs inside the CASA subprocess\n"
        "        if '.migrations' in info.name or info.name.endswith('casasiteconfig'):\n"
        "            continue\n"
        "        importlib.import_module(info.name)\n"
        "print('CASA_MODULES', sorted(m for m in sys.modules if m.startswith(('casatools', 'casatasks'))))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "qa2portal.settings"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert "CASA_MODULES []" in result.stdout, result.stdout
