"""The main job of the README's first command, `pde2gen demo`: end to end on a data file at a few training
steps, its argument checks (before any work), the split of a data file and the plot's window."""
import json
import math
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from pde2gen.cli import main as cli_main
from pde2gen.report import demo
from pde2gen.resources import resource_dir


def spiral(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    angle = 3 * np.pi * rng.random(n)
    return np.stack([angle * np.cos(angle), angle * np.sin(angle)], axis=1) / 3 + 0.05 * rng.normal(size=(n, 2))


@pytest.mark.slow  # ~1 min: two builds, two short trainings, 2 x 4000 samples
def test_demo_on_a_data_file_holds_out_points_it_never_trains_on(tmp_path):
    pytest.importorskip("torch")
    points = spiral(2000)
    np.save(tmp_path / "spiral.npy", points)
    out = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-m", "pde2gen", "demo", "--steps", "10", "--out", str(out),
                           "--data", str(tmp_path / "spiral.npy")],
                          capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    held_out, trained_on = np.load(out / "held_out.npy"), np.load(out / "train.npy")
    assert len(held_out) == 500 and len(trained_on) == 1500  # a quarter held out
    assert sorted(map(tuple, np.concatenate([held_out, trained_on]))) == sorted(map(tuple, points))
    rows = {row["model"]: row for row in json.loads((out / "results.json").read_text())}
    assert set(rows) == {"kac", "pfgm", "data (floor)"}
    assert rows["data (floor)"]["sliced_w1"] > 0.01  # training points against the held-out ones: not 0
    floor = rows["data (floor)"]  # 1500 training points: one draw, so its range is the value itself
    assert floor["floor_draws"] == 1 and floor["sliced_w1_range"] == [floor["sliced_w1"]] * 2
    for name in ("kac", "pfgm"):
        assert (out / name / "module" / "process.py").is_file()
        assert (out / name / "run" / "checkpoint.pt").is_file()
        assert math.isfinite(rows[name]["sliced_w1"]) and rows[name]["sliced_w1"] > 0
        # A model is never closer to the held-out data than fresh data is (the floor), at 10 steps far from it.
        assert rows[name]["sliced_w1"] > rows["data (floor)"]["sliced_w1"]
        logged = [json.loads(line)["loss"] for line in (out / name / "run" / "loss.jsonl").read_text().splitlines()]
        assert rows[name]["loss_max"] == max(logged)
        samples = np.load(out / name / "samples.npy")
        assert rows[name]["outside_plot"] == demo.spread(samples, demo.plot_window(held_out))["outside_plot"]
    results = (out / "results.md").read_text()
    assert results.startswith("# pde2gen demo") and "Metrics against 500 points held out at random" in results
    assert "## Reading the results: heavy tails" in results
    assert not list(out.rglob("*.tmp"))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--data", "spiral"], "expected a toy (moons, 8gaussians, checkerboard, swissroll) or a .npy file"),
        (["--steps", "0"], "--steps must be at least 1"),
        (["--data", "{dir}/missing.npy"], "file not found"),
        (["--data", "{dir}/line.npy"], "expected a numeric array of shape (N, 2)"),
        (["--data", "{dir}/few.npy"], "at least 20"),
        (["--data", "{dir}/huge.npy"], "cannot read it as a .npy array"),
    ],
)
def test_bad_arguments_fail_at_once_in_one_line(tmp_path, capsys, arguments, message):
    np.save(tmp_path / "line.npy", np.zeros(50))
    np.save(tmp_path / "few.npy", np.zeros((5, 2)))
    with open(tmp_path / "huge.npy", "wb") as handle:  # a header claiming 1e11 points over 160 bytes
        np.lib.format.write_array_header_1_0(handle, {"descr": "<f8", "fortran_order": False, "shape": (10**11, 2)})
        handle.write(np.zeros((10, 2)).tobytes())
    out = tmp_path / "demo"
    started = time.perf_counter()
    code = cli_main(["demo", "--out", str(out), *(a.format(dir=tmp_path) for a in arguments)])
    assert code == 2 and time.perf_counter() - started < 5
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error[usage]") and message in err[0], err
    assert not out.exists()  # refused before any work


def test_toy_names_are_the_generated_train_scripts():
    template = (resource_dir("templates") / "train.py.j2").read_text()
    toys = re.search(r"TOY_DATA = \{(.*?)\}", template, re.DOTALL).group(1)
    assert tuple(re.findall(r'"(\w+)":', toys)) == demo.TOY_DATA


def test_a_data_file_is_split_at_random_into_disjoint_parts():
    points = np.arange(200.0).reshape(100, 2)
    trained_on, held_out = demo.split_points(points, seed=1)
    assert len(held_out) == 25 and len(trained_on) == 75
    assert sorted(np.concatenate([trained_on, held_out])[:, 0]) == sorted(points[:, 0])
    assert not np.array_equal(held_out, points[:25])  # shuffled, not the head of the file
    big_held_out = demo.split_points(np.zeros((40_000, 2)), seed=1)[1]
    assert len(big_held_out) == demo.HELD_OUT


def test_the_plot_window_is_robust_and_counts_what_it_hides():
    rng = np.random.default_rng(0)
    held_out = rng.uniform(-1, 1, size=(10_000, 2)) + [5.0, -3.0]
    held_out[:10] = 1e6  # 0.1% far outliers do not widen the window
    centre, half_width = demo.plot_window(held_out)
    assert np.allclose(centre, [5.0, -3.0], atol=0.05) and abs(half_width - 1.3) < 0.02
    samples = np.array([[5.0, -3.0], [5.0 + 2.0, -3.0], [5.0, -3.0 - 1e5], [5.5, -2.5]])
    reach = demo.spread(samples, (centre, half_width))
    assert reach["outside_plot"] == 0.5
    assert math.isclose(reach["radius_max"], 1e5, rel_tol=1e-3) and reach["radius_median"] < 2.01
