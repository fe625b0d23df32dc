"""The main job (``pde2gen demo``): check, build, train and sample two physical models on a 2-D toy, on CPU.

1. check ``wave+damping`` isotropically in N = 2 (not s-generative: C1 fails) and with the product
   construction (s-generative: the Kac flow), and ``poisson`` (PFGM);
2. build both s-generative models into standalone modules;
3. train each with its own generated ``train.py`` and sample with its ``sample.py`` (subprocesses: the modules
   need nothing of pde2gen);
4. compare the samples with held-out data (sliced Wasserstein, MMD), plot them, write ``results.md``.

``--data`` is a toy of the generated train.py (held-out points are fresh draws with seeds training never uses) or
a .npy file of 2-D points, split at random: HELD_OUT_SHARE of it (at most HELD_OUT points) is held out and never
trained on. Arguments are checked before any work.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .metrics import mmd_rbf, sliced_wasserstein

MODELS = (
    # (name, PDE, construction)
    ("kac", "wave+damping", "product"),
    ("pfgm", "poisson", None),
)
HELD_OUT = 4000
SAMPLES = 4000
# The generated train.py's toy data sets (tests/test_demo.py keeps the two lists equal).
TOY_DATA = ("moons", "8gaussians", "checkerboard", "swissroll")
HELD_OUT_SHARE = 0.25  # of a data file: held out, never trained on
MIN_FILE_POINTS = 20
FLOOR = "data (floor)"
# The floor is scored on this many independent draws of the data (median and range): one draw of 4000 checkerboard
# points against the held-out set reads sliced W1 0.037-0.070 over 20 seeds, so a single draw says little.
FLOOR_DRAWS = 10


def _say(message: str) -> None:
    print(f"[demo] {message}", flush=True)


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    # One intra-op thread: a 2-D MLP gains nothing from more, and on a busy 2-core machine torch's second thread
    # stalls every op (measured: 11 it/s with one thread against 0.7 it/s with two under load).
    env = {"OMP_NUM_THREADS": "1", **os.environ, "PYTHONUNBUFFERED": "1"}
    completed = subprocess.run(cmd, cwd=cwd, env=env, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"error[demo]: command failed ({completed.returncode}): {' '.join(cmd)}")


def _held_out(module_dir: Path, data: str, path: Path, seed: int, count: int = HELD_OUT) -> np.ndarray:
    """``count`` fresh draws of the toy set from the generated train.py's own generator (seeds training never uses)."""
    code = ("import sys, numpy as np; sys.path.insert(0, sys.argv[1]); from train import load_data; "
            "np.save(sys.argv[2], load_data(sys.argv[3], seed=int(sys.argv[5]), n_toy=int(sys.argv[4])))")
    _run([sys.executable, "-c", code, str(module_dir), str(path), data, str(count), str(seed)])
    return np.load(path)


def read_points(path: Path) -> np.ndarray:
    """The (N, 2) float64 points of a .npy file; UsageError (one line) for anything else. Memory-mapped first, so
    a header that claims more than the file holds is refused without allocating it."""
    try:
        points = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise UsageError(f"--data {path}: cannot read it as a .npy array ({' '.join(str(exc).split())[:120]})") from None
    if points.ndim != 2 or points.shape[1] != 2 or points.dtype.kind not in "biuf":
        raise UsageError(f"--data {path}: the demo's models are built for 2-D points, expected a numeric array of "
                         f"shape (N, 2), found shape {points.shape} and dtype {points.dtype}")
    if len(points) < MIN_FILE_POINTS:
        raise UsageError(f"--data {path}: {len(points)} points; the demo needs at least {MIN_FILE_POINTS} to hold "
                         "some out")
    points = np.asarray(points, dtype=np.float64)
    if not np.isfinite(points).all():
        raise UsageError(f"--data {path}: holds NaN or infinite values")
    return points


def check_arguments(steps: int, data: str) -> np.ndarray | None:
    """Refuse bad arguments before any work; the points of a data file, or None for a toy."""
    if steps < 1:
        raise UsageError(f"--steps must be at least 1, got {steps}")
    if data in TOY_DATA:
        return None
    path = Path(data)
    if path.suffix != ".npy":
        raise UsageError(f"--data {data!r}: expected a toy ({', '.join(TOY_DATA)}) or a .npy file of 2-D points")
    if not path.is_file():
        raise UsageError(f"--data {data}: file not found")
    return read_points(path)


def split_points(points: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training points, held-out points): a random split, HELD_OUT_SHARE held out (at most HELD_OUT)."""
    order = np.random.default_rng(seed).permutation(len(points))
    n_held = min(HELD_OUT, max(2, round(HELD_OUT_SHARE * len(points))))
    return points[order[n_held:]], points[order[:n_held]]


def run_demo(out: str = "runs/demo", steps: int = 1500, data: str = "checkerboard") -> int:
    from ..analysis.analyse import analyse
    from ..build import build
    from ..spec.parse import parse
    from .check import format_verdict_line

    file_points = check_arguments(steps, data)
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    train_data, held_out, floor_draws = data, None, None
    if file_points is not None:  # split before anything trains: the held-out points are never trained on
        train_points, held_out = split_points(file_points, seed=987654)
        train_data = str(root / "train.npy")
        np.save(train_data, train_points)
        np.save(root / "held_out.npy", held_out)
        # disjoint sets of training points: independent of the held-out set, like a model's samples should be
        order = np.random.default_rng(987655).permutation(len(train_points))
        count = max(1, min(FLOOR_DRAWS, len(train_points) // SAMPLES))
        floor_draws = [train_points[order[k * SAMPLES:(k + 1) * SAMPLES]] for k in range(count)]
        source = (f"{len(held_out)} points held out at random from {data} (of its {len(file_points)}; the other "
                  f"{len(train_points)} are the training set)")

    _say("1/4 check")
    for expr, construction in (("wave+damping", "isotropic"), ("wave+damping", "product"), ("poisson", None)):
        report = analyse(parse(expr, dim=2, construction=construction), repairs=False)
        _say("    " + format_verdict_line(f"{expr} [{report.spec.construction}, N=2]", report))

    rows = []
    samples_by_model = {}
    for name, expr, construction in MODELS:
        model_dir = root / name
        module = model_dir / "module"
        _say(f"2/4 build {expr} ({construction or 'isotropic'}) -> {module}")
        build(expr, module, dim=2, construction=construction, force=True)
        if held_out is None:
            held_out = _held_out(module, data, root / "held_out.npy", seed=987654)
            source = f"{len(held_out)} fresh draws of {data} (seeds training never uses)"
        _say(f"3/4 train {name} on {data}: {steps} steps on CPU")
        t0 = time.perf_counter()
        _run([sys.executable, str(module / "train.py"), "--data", train_data, "--steps", str(steps), "--batch", "256",
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
            "train_s": train_s, "sample_s": sample_s, **loss_summary(model_dir / "run" / "loss.jsonl"),
        })

    # Noise floor: data independent of the held-out set against it (fresh draws of a toy; for a file, training
    # points), scored on each draw: a model drawing exactly from the data's law lands within their range.
    if floor_draws is None:
        pool = _held_out(root / MODELS[0][0] / "module", data, root / "floor_draws.npy", seed=987655,
                         count=FLOOR_DRAWS * SAMPLES)
        floor_draws = np.split(pool, FLOOR_DRAWS)
    floor_sw = [sliced_wasserstein(points, held_out) for points in floor_draws]
    floor_mmd = [mmd_rbf(points, held_out) for points in floor_draws]
    rows.append({"model": FLOOR, "pde": "-", "construction": "-",
                 "sliced_w1": float(np.median(floor_sw)), "mmd": float(np.median(floor_mmd)),
                 "sliced_w1_range": [min(floor_sw), max(floor_sw)], "mmd_range": [min(floor_mmd), max(floor_mmd)],
                 "floor_draws": len(floor_draws), "train_s": 0.0, "sample_s": 0.0})
    window = plot_window(held_out)
    for row, points in zip(rows, [*samples_by_model.values(), floor_draws[0]], strict=True):
        row.update(spread(points, window))
    _write_results(root, rows, data, steps, source, window)
    _plot(root / "samples.png", held_out, samples_by_model, data, window)
    _say(f"done in {time.perf_counter() - started:.0f} s: {root / 'results.md'}, {root / 'samples.png'}")
    print((root / "results.md").read_text())
    return 0


def loss_summary(log_path: Path) -> dict:
    """The first, last, smallest and largest logged loss of a run (each the mean over one logging interval)."""
    losses = [json.loads(line)["loss"] for line in log_path.read_text().splitlines() if line.strip()]
    return {"loss_first": losses[0], "loss_last": losses[-1], "loss_min": min(losses), "loss_max": max(losses)}


def plot_window(held_out: np.ndarray) -> tuple[np.ndarray, float]:
    """(centre, half-width) of the square the plot shows: the held-out median, and 1.3 times the 99.5%
    quantile of the held-out points' largest |coordinate - centre| (robust: a few far points do not set it)."""
    centre = np.median(held_out, axis=0)
    return centre, 1.3 * float(np.quantile(np.abs(held_out - centre).max(axis=1), 0.995))


def spread(points: np.ndarray, window: tuple[np.ndarray, float]) -> dict:
    """How far points reach: the share outside the plotted window and the 50% / 99% / largest distance to its
    centre (the plot alone would hide far outliers and a collapse onto the centre looks like a small blob)."""
    centre, half_width = window
    offset = np.abs(points - centre)
    radius = np.linalg.norm(points - centre, axis=1)
    return {"outside_plot": float(np.mean(offset.max(axis=1) > half_width)),
            "radius_median": float(np.median(radius)), "radius_p99": float(np.quantile(radius, 0.99)),
            "radius_max": float(radius.max())}


HEAVY_TAILS = """\
## Reading the results: heavy tails

The two models differ in the tails of their noise kernels, and it shows in the losses, the radii and the plot.

- **kac** (the damped wave with the product construction): each coordinate's kernel is the Kac walk's,
  supported in |x - y| <= c t. It is light-tailed, so the training target has a finite variance, the logged
  loss stays O(1) and settles, and the samples stay inside the data's window.
- **pfgm** (Poisson in N + 1 = 3 dimensions): at time t the kernel is p_t(x | y) proportional to
  t / (|x - y|^2 + t^2)^(3/2). Its radius has the tail P(|x - y| > r) ~ t / r, so it has no finite mean, let alone
  a variance. The plain regression target (x - y) / t has that tail at every t: its second moment is infinite.
  - The generated network (model.py, TAIL_RADIUS) therefore reads its noise level off |x - mean| for points far
    out in the tail: there its denoiser tends to the data mean and what it regresses stays bounded. The logged
    loss stays finite, but it is larger and noisier than kac's: the target keeps a large irreducible variance at
    small noise levels (bench/quality.py measured 10-20 against 0.9 for EDM at 1000 steps).
  - That is what limits PFGM at small budgets: the learned field near the data, more than the sampler. The
    samples blur between the data's modes, and the heavy-tailed prior (radii many times sigma_max) starts some
    far out: see "outside plot" and the largest radius.
  - The exact PFGM flow does reach the data (`sample.py --exact DATA`). The PFGM paper trains on a normalised
    (bounded, biased) field instead, and PFGM++ with a larger D lightens the tail (D -> infinity is diffusion).
  - MMD scales its kernel by the pooled spread, so far outliers also make it look smaller: read it with the radii.
"""


def _write_results(root: Path, rows: list[dict], data: str, steps: int, source: str,
                   window: tuple[np.ndarray, float]) -> None:
    centre, half_width = window
    lines = [
        f"# pde2gen demo: {data}, {steps} training steps, batch 256, CPU",
        "",
        (f"Metrics against {source}; {SAMPLES} samples from each model (lower is better). The floor scores "
         f"{rows[-1]['floor_draws']} independent draws of {SAMPLES} data points (or fewer, for a small file) the same "
         "way: its median, and in brackets the range of the draws. A model that draws exactly from the data's law "
         "lands within that range, so differences inside it are the metrics' own noise."),
        "",
        ("| model | PDE | construction | sliced W1 | MMD^2 | loss first / last / max | outside plot | radius "
         "50% / 99% / max | train s | sample s |"),
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        loss = f"{r['loss_first']:.3g} / {r['loss_last']:.3g} / {r['loss_max']:.3g}" if "loss_max" in r else "-"
        sw, mmd = f"{r['sliced_w1']:.4f}", f"{r['mmd']:.5f}"
        if "sliced_w1_range" in r:
            sw += " ({:.4f} to {:.4f})".format(*r["sliced_w1_range"])
            mmd += " ({:.5f} to {:.5f})".format(*r["mmd_range"])
        lines.append(f"| {r['model']} | {r['pde']} | {r['construction']} | {sw} | {mmd} "
                     f"| {loss} | {100 * r['outside_plot']:.1f}% | {r['radius_median']:.3g} / {r['radius_p99']:.3g}"
                     f" / {r['radius_max']:.3g} | {r['train_s']:.1f} | {r['sample_s']:.1f} |")
    floor = rows[-1]
    lines.append("")
    for r in rows[:-1]:
        lines.append(f"- {r['model']}: logged losses from {r['loss_min']:.3g} to {r['loss_max']:.3g}; "
                     f"{100 * r['outside_plot']:.1f}% of its samples lie outside the plotted window (data: "
                     f"{100 * floor['outside_plot']:.1f}%), the farthest {r['radius_max']:.3g} from its centre "
                     f"(data: {floor['radius_max']:.3g}).")
    lines += [
        "",
        (f"Radii are distances to the held-out median ({centre[0]:.3g}, {centre[1]:.3g}); samples.png shows the "
         f"square of half-width {half_width:.3g} around it (1.3 x the 99.5% quantile of the held-out points), "
         "and 'outside plot' is the share of points it cannot show. Losses are the means over each logging "
         "interval of train.py (loss.jsonl, plotted in run/loss.png)."),
        "",
        HEAVY_TAILS,
    ]
    (root / "results.md").write_text("\n".join(lines))
    (root / "results.json").write_text(json.dumps(rows, indent=2))


def _plot(path: Path, held_out: np.ndarray, samples: dict[str, np.ndarray], data: str,
          window: tuple[np.ndarray, float]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    centre, half_width = window
    panels = [("held-out " + data, held_out)] + list(samples.items())
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4.3))
    for ax, (title, pts) in zip(axes, panels):
        ax.scatter(pts[:, 0], pts[:, 1], s=1, alpha=0.5)
        outside = np.count_nonzero(np.abs(pts - centre).max(axis=1) > half_width)
        ax.set_title(f"{title}\n{outside} of {len(pts)} points outside this window", fontsize=10)
        ax.set_xlim(centre[0] - half_width, centre[0] + half_width)
        ax.set_ylim(centre[1] - half_width, centre[1] + half_width)
        ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
