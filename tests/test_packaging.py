"""`pip install .` brings the shipped models, not only a clone."""
import subprocess
import sys
import zipfile

import pytest

from .conftest import REPO


def test_the_wheel_holds_the_shipped_models(tmp_path):
    models = sorted(p.name for p in (REPO / "pretrained").glob("*.pt"))
    if not models:
        pytest.skip("no pretrained/*.pt in this checkout")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (wheel,) = tmp_path.glob("zhrnn-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for model in models:
        assert f"zhrnn/pretrained/{model}" in names
    assert {"zhrnn/shipped.py", "zhrnn/poetry/cipai.json", "zhrnn/poetry/pingshui.tsv"} <= names
