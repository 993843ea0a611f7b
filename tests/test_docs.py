"""The documentation builds with Sphinx without a single warning (``-W``), as in CI."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MISSING = [name for name in ("sphinx", "sphinx_rtd_theme", "myst_parser") if importlib.util.find_spec(name) is None]


@pytest.mark.skipif(bool(MISSING), reason=f"needs the docs extra: pip install -e '.[docs]' (missing {', '.join(MISSING)})")
def test_docs_build_without_warnings(tmp_path):
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "-d", str(tmp_path / "doctrees"),
               str(ROOT / "docs"), str(tmp_path / "html")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"Sphinx warnings or errors:\n{result.stderr[-6000:]}"
    assert (tmp_path / "html" / "modules" / "shm_ppo.html").exists()


def test_results_page_is_generated(tmp_path):
    """docs/results.md comes from benchmarks/learning/report.py and the committed runs, never written by hand."""
    text = (ROOT / "docs" / "results.md").read_text()
    assert "Written by `benchmarks/learning/report.py`" in text
    out = tmp_path / "results.md"
    learning = ROOT / "benchmarks" / "learning"
    command = [sys.executable, str(learning / "report.py"), "-f", str(learning / "results"),
               "--out", str(out), "--img-dir", str(tmp_path / "img")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "MPLBACKEND": "Agg"})
    assert result.returncode == 0, result.stderr[-3000:]

    def scores(page: str) -> str:
        return page.split("## Final scores")[1].split("##")[0]

    assert scores(out.read_text()) == scores(text), "docs/results.md is out of date: rerun report.py (see its docstring)"
