"""GPU check: three families at image scale on the GPU, in a few minutes; exits non-zero when anything fails.

    python bench/gpu_check.py                       # every visible GPU; writes bench/results/gpu_check.{json,md}
    python bench/gpu_check.py --steps 100 --batch 64
    python bench/gpu_check.py --cpu-smoke           # no GPU: the same script on tiny settings, to test it

For each of heat (catalog ``diffusion``), PFGM++ with D = 128 (``pfgmpp``) and the Kac flow on the linear path
(``kac --path linear``) it builds the module, makes 32x32x3 uint8 images (smooth random blobs, seeded), and
  1. trains the papers' network size (train.py --preset kac-cifar10, 36M parameters) for --steps steps under
     bf16 autocast on one GPU;
  2. trains it again under ``torchrun --nproc_per_node K`` (K = the visible GPUs; NCCL when K >= 2; with one GPU
     the launcher runs one process, and the report says that NCCL was not exercised);
  3. samples --n images with sample.py (Euler in the module's default variable, --sample-steps steps) from the
     single-GPU run and checks that every sample is finite and lies in the data's range.
Reported per family and mode: training images/s (median over the logged intervals after the first), peak GPU
memory, the last loss, any non-finite loss or sample, sampling images/s, and the wall time of each command.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

FAMILIES = (
    ("heat", "diffusion", ()),
    ("pfgmpp D=128", "pfgmpp", ()),
    ("kac linear", "kac", ("--path", "linear")),
)


def synthetic_images(count: int, size: int, seed: int) -> np.ndarray:
    """(count, size, size, 3) uint8: a few Gaussian colour blobs per image on a dark ground."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij"), -1).astype(np.float64)
    images = np.full((count, size, size, 3), 20.0)
    for _ in range(3):
        centre = rng.uniform(0, size, (count, 1, 1, 2))
        width = rng.uniform(size / 10, size / 4, (count, 1, 1, 1))
        colour = rng.uniform(40, 235, (count, 1, 1, 3))
        blob = np.exp(-((grid[None] - centre) ** 2).sum(-1, keepdims=True) / (2 * width**2))
        images = np.maximum(images, colour * blob)
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def run(command, cwd: Path, timeout: float) -> dict:
    """{'ok', 'seconds', 'tail'} of one command (stderr and stdout tail kept for the report)."""
    start = time.perf_counter()
    try:
        done = subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, check=False)
        ok, tail = done.returncode == 0, (done.stderr + done.stdout).strip().splitlines()[-3:]
    except subprocess.TimeoutExpired:
        ok, tail = False, [f"timed out after {timeout:.0f} s"]
    return {"ok": ok, "seconds": round(time.perf_counter() - start, 1), "tail": tail}


def training_figures(run_dir: Path) -> dict:
    """Throughput, peak memory and the last loss from a run's loss.jsonl."""
    path = run_dir / "loss.jsonl"
    if not path.exists():
        return {"records": 0}
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    rates = [r["samples_per_second"] for r in records[1:]] or [r["samples_per_second"] for r in records]
    losses = [r["loss"] for r in records]
    return {
        "records": len(records),
        "images_per_second": float(np.median(rates)) if rates else math.nan,
        "gpu_peak_mib": max((r.get("gpu_peak_mib", math.nan) for r in records), default=math.nan),
        "last_loss": losses[-1] if losses else math.nan,
        "non_finite_loss": not all(math.isfinite(v) for v in losses),
    }


def check_family(label, entry, build_flags, args, work: Path, data_file: Path, gpus: int) -> dict:
    module = work / entry.replace("/", "_")
    result = {"family": label, "entry": entry, "build_flags": list(build_flags)}
    build = run([sys.executable, "-m", "pde2gen", "build", entry, *build_flags, "-o", module, "--force"],
                cwd=C.ROOT, timeout=300)
    result["build"] = build
    if not build["ok"]:
        return result
    device = ["--device", "cpu"] if args.cpu_smoke else []
    train_args = ["--data", data_file, "--preset", "kac-cifar10", "--steps", args.steps, "--batch", args.batch,
                  "--log-every", max(1, args.steps // 10), "--ckpt-every", args.steps, "--workers", 0, *device]
    if args.cpu_smoke:
        train_args += ["--channel-mult", "1,2", "--blocks", "1"]
    single = run([sys.executable, module / "train.py", *train_args, "--out", work / f"{entry}-1gpu"],
                 cwd=module, timeout=args.timeout)
    result["train_1gpu"] = {**single, **training_figures(work / f"{entry}-1gpu")}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", max(1, gpus)]
    distributed = run([*launcher, module / "train.py", *train_args, "--out", work / f"{entry}-torchrun"],
                      cwd=module, timeout=args.timeout)
    result["train_torchrun"] = {**distributed, **training_figures(work / f"{entry}-torchrun"),
                                "processes": max(1, gpus), "nccl_exercised": gpus >= 2}
    if single["ok"]:
        out = work / f"{entry}-samples.npy"
        sampled = run([sys.executable, module / "sample.py", "--ckpt", work / f"{entry}-1gpu", "--n", args.n,
                       "--steps", args.sample_steps, "--solver", "euler", "--out", out, *device],
                      cwd=module, timeout=args.timeout)
        if sampled["ok"]:
            samples = np.load(out)
            sampled["finite_in_range"] = bool(samples.dtype == np.uint8 or np.isfinite(samples).all())
            sampled["images_per_second"] = round(args.n / max(sampled["seconds"], 1e-9), 1)
        result["sample"] = sampled
    return result


def passed(result: dict) -> bool:
    parts = [result.get(key, {}) for key in ("build", "train_1gpu", "train_torchrun", "sample")]
    return all(part.get("ok") for part in parts) and not any(
        result.get(key, {}).get("non_finite_loss", True) for key in ("train_1gpu", "train_torchrun")
    ) and result.get("sample", {}).get("finite_in_range", False)


def table(results, device: str) -> str:
    rows = []
    for r in results:
        one, many, sample = r.get("train_1gpu", {}), r.get("train_torchrun", {}), r.get("sample", {})
        rows.append([
            r["family"], "PASS" if passed(r) else "FAIL",
            C.fmt(one.get("images_per_second", math.nan), None, 4), C.fmt(one.get("gpu_peak_mib", math.nan), None, 5),
            C.fmt(many.get("images_per_second", math.nan), None, 4), str(many.get("processes", "-")),
            C.fmt(sample.get("images_per_second", math.nan), None, 4),
            C.fmt(one.get("last_loss", math.nan), None, 3),
        ])
    header = ["family", "verdict", "train img/s (1 GPU)", "peak MiB", "train img/s (torchrun)", "procs",
              "sample img/s", "last loss"]
    return f"Device: {device}\n\n" + C.markdown_table(header, rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="training steps per run")
    parser.add_argument("--batch", type=int, default=128, help="global batch")
    parser.add_argument("--n", type=int, default=256, help="samples drawn per family")
    parser.add_argument("--sample-steps", type=int, default=50, help="Euler steps of sample.py")
    parser.add_argument("--images", type=int, default=2048, help="size of the synthetic data set")
    parser.add_argument("--timeout", type=float, default=900, help="seconds allowed per command")
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="no GPU needed: tiny network and steps on the CPU (tests the script, measures nothing)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the modules and runs in this folder")
    args = parser.parse_args(argv)
    import torch

    gpus = torch.cuda.device_count()
    if not gpus and not args.cpu_smoke:
        print("error: no CUDA device is visible (use --cpu-smoke to test the script on the CPU)", file=sys.stderr)
        return 2
    device = "CPU smoke run" if args.cpu_smoke else f"{gpus} x {torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    work = args.keep or Path(tempfile.mkdtemp(prefix="pde2gen-gpu-check-"))
    work.mkdir(parents=True, exist_ok=True)
    data_file = work / "images.npy"
    np.save(data_file, synthetic_images(args.images, 32, seed=0))
    results = []
    try:
        for label, entry, flags in FAMILIES:
            C.log(f"{label}: build, train on 1 GPU, train under torchrun, sample")
            results.append(check_family(label, entry, flags, args, work, data_file, 0 if args.cpu_smoke else gpus))
            C.log(f"{label}: {'PASS' if passed(results[-1]) else 'FAIL'}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    report = table(results, device)
    print(report)
    for r in results:
        for key in ("build", "train_1gpu", "train_torchrun", "sample"):
            part = r.get(key)
            if part is not None and not part.get("ok"):
                print(f"{r['family']} {key} failed: {' | '.join(part['tail'])}", file=sys.stderr)
    if not args.cpu_smoke:
        C.write_json(C.RESULTS / "gpu_check.json", {"device": device, "settings": vars(args) | {"keep": None},
                                                     "results": results})
        C.write_text(C.RESULTS / "gpu_check.md", report + "\n")
    return 0 if results and all(passed(r) for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
