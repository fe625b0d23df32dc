"""The main job of the README's first command, `pde2gen demo`, end to end at a few training steps."""
import json
import math
import subprocess
import sys

import pytest

pytest.importorskip("torch")


@pytest.mark.slow  # ~1 min: two builds, two short trainings, 2 x 4000 samples
def test_demo_checks_builds_trains_samples_and_measures(tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-m", "pde2gen", "demo", "--steps", "10", "--out", str(out)],
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {row["model"]: row for row in json.loads((out / "results.json").read_text())}
    assert set(rows) == {"kac", "pfgm", "held-out data (floor)"}
    for name in ("kac", "pfgm"):
        assert (out / name / "module" / "process.py").is_file()
        assert (out / name / "run" / "checkpoint.pt").is_file()
        assert math.isfinite(rows[name]["sliced_w1"]) and rows[name]["sliced_w1"] > 0
        # A model is never closer to the held-out data than fresh data is (the floor), at 10 steps far from it.
        assert rows[name]["sliced_w1"] > rows["held-out data (floor)"]["sliced_w1"]
    assert (out / "results.md").read_text().startswith("# pde2gen demo")
    assert not list(out.rglob("*.tmp"))
