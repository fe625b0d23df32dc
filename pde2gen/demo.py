"""The main job (``pde2gen demo``): check, build, train and sample two physical models on a 2-D toy, on CPU.

1. check ``wave+damping`` isotropically in N = 2 (not s-generative: C1 fails) and with the product
   construction (s-generative: the Kac flow), and ``poisson`` (PFGM);
2. build both s-generative models into standalone modules;
3. train each with its own generated ``train.py`` and sample with its ``sample.py`` (subprocesses: the modules
   need nothing of pde2gen);
4. compare the samples with held-out data (sliced Wasserstein, MMD), plot them, write ``results.md``.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .metrics import mmd_rbf, sliced_wasserstein

MODELS = (
    # (name, PDE, construction)
    ("kac", "wave+damping", "product"),
    ("pfgm", "poisson", None),
)
HELD_OUT = 4000
SAMPLES = 4000


def _say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    # One intra-op thread: a 2-D MLP gains nothing from more, and on a busy 2-core machine torch's second thread
    # stalls every op (measured: 11 it/s with one thread against 0.7 it/s with two under load).
    env = {"OMP_NUM_THREADS": "1", **os.environ, "PYTHONUNBUFFERED": "1"}
    completed = subprocess.run(cmd, cwd=cwd, env=env)
    if completed.returncode != 0:
        raise SystemExit(f"error[demo]: command failed ({completed.returncode}): {' '.join(cmd)}")


def _held_out(module_dir: Path, data: str, path: Path, seed: int) -> np.ndarray:
    """Fresh draws of the toy set from the generated train.py's own generator (seeds training never uses)."""
    code = ("import sys, numpy as np; sys.path.insert(0, sys.argv[1]); from train import load_data; "
            "np.save(sys.argv[2], load_data(sys.argv[3], seed=int(sys.argv[5]), n_toy=int(sys.argv[4])))")
    _run([sys.executable, "-c", code, str(module_dir), str(path), data, str(HELD_OUT), str(seed)])
    return np.load(path)


def run_demo(out: str = "runs/demo", steps: int = 1500, data: str = "checkerboard") -> int:
    from .analyse import analyse
    from .build import build
    from .parse import parse
    from .report import format_verdict_line

    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()

    _say("1/4 check")
    for expr, construction in (("wave+damping", "isotropic"), ("wave+damping", "product"), ("poisson", None)):
        report = analyse(parse(expr, dim=2, construction=construction), repairs=False)
        _say("    " + format_verdict_line(f"{expr} [{report.spec.construction}, N=2]", report))

    rows = []
    samples_by_model = {}
    held_out = None
    for name, expr, construction in MODELS:
        model_dir = root / name
        module = model_dir / "module"
        _say(f"2/4 build {expr} ({construction or 'isotropic'}) -> {module}")
        build(expr, module, dim=2, construction=construction, force=True)
        if held_out is None:
            held_out = _held_out(module, data, root / "held_out.npy", seed=987654)
        _say(f"3/4 train {name} on {data}: {steps} steps on CPU")
        t0 = time.perf_counter()
        _run([sys.executable, str(module / "train.py"), "--data", data, "--steps", str(steps), "--batch", "256",
              "--out", str(model_dir / "run"), "--device", "cpu", "--ckpt-every", str(max(steps // 2, 1)),
              "--log-every", str(max(steps // 10, 1))])
        train_s = time.perf_counter() - t0
        _say(f"4/4 sample {name}: {SAMPLES} points, Heun, 40 grid points")
        t0 = time.perf_counter()
        samples_path = model_dir / "samples.npy"
        _run([sys.executable, str(module / "sample.py"), "--ckpt", str(model_dir / "run"), "--n", str(SAMPLES),
              "--steps", "40", "--solver", "heun", "--out", str(samples_path), "--device", "cpu"])
        sample_s = time.perf_counter() - t0
        samples = np.load(samples_path)
        samples_by_model[name] = samples
        rows.append({
            "model": name, "pde": expr, "construction": construction or "isotropic",
            "sliced_w1": sliced_wasserstein(samples, held_out), "mmd": mmd_rbf(samples, held_out),
            "train_s": train_s, "sample_s": sample_s,
        })

    # Noise floor: a second held-out draw against the first.
    reference = _held_out(root / MODELS[0][0] / "module", data, root / "held_out_2.npy", seed=987655)
    rows.append({"model": "held-out data (floor)", "pde": "-", "construction": "-",
                 "sliced_w1": sliced_wasserstein(reference, held_out), "mmd": mmd_rbf(reference, held_out),
                 "train_s": 0.0, "sample_s": 0.0})
    _write_results(root, rows, data, steps)
    _plot(root / "samples.png", held_out, samples_by_model, data)
    _say(f"done in {time.perf_counter() - started:.0f} s: {root / 'results.md'}, {root / 'samples.png'}")
    print((root / "results.md").read_text())
    return 0


def _write_results(root: Path, rows: list[dict], data: str, steps: int) -> None:
    lines = [
        f"# pde2gen demo: {data}, {steps} training steps, batch 256, CPU",
        "",
        f"Metrics against {HELD_OUT} held-out points ({SAMPLES} samples each; lower is better).",
        "",
        "| model | PDE | construction | sliced W1 | MMD^2 | train s | sample s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['model']} | {r['pde']} | {r['construction']} | {r['sliced_w1']:.4f} | {r['mmd']:.5f} "
                     f"| {r['train_s']:.1f} | {r['sample_s']:.1f} |")
    (root / "results.md").write_text("\n".join(lines) + "\n")
    (root / "results.json").write_text(json.dumps(rows, indent=2))


def _plot(path: Path, held_out: np.ndarray, samples: dict[str, np.ndarray], data: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("held-out " + data, held_out)] + list(samples.items())
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4))
    lim = np.quantile(np.abs(held_out), 0.995) * 1.3
    for ax, (title, pts) in zip(axes, panels):
        ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.5)
        ax.set_title(title)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
