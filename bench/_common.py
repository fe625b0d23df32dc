"""Shared helpers of the benchmarks in bench/: machine description, atomic result files, progress lines,
building catalog entries into cached modules, and importing several generated modules side by side.

Not a benchmark itself (nothing here prints numbers). Every benchmark script imports it as ``_common``.
"""
from __future__ import annotations

import faulthandler
import hashlib
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
# Built modules, keyed by a hash of the compiler's sources: rebuilt whenever pde2gen, templates or catalog change.
CACHE = Path(os.environ.get("PDE2GEN_BENCH_CACHE", Path(tempfile.gettempdir()) / "pde2gen-bench-cache"))

# The s-generative catalog entries the benchmarks build and train (issue 5), in table order.
ENTRIES = (
    ("diffusion", "diffusion (VE), kappa=1"),
    ("pfgmpp-dinf", "PFGM++ D=inf (heat, kappa=1/2)"),
    ("pfgm", "PFGM (D=1)"),
    ("pfgmpp-d4", "PFGM++ D=4"),
    ("pfgmpp", "PFGM++ D=128"),
    ("pfgmpp-d2048", "PFGM++ D=2048"),
    ("yukawa", "Yukawa m=1"),
    ("yukawa-light", "Yukawa m=0.1"),
    ("fractional", "fractional alpha=1.5"),
    ("kac", "Kac a=9 c=3"),
    ("kac-a25-c2", "Kac a=25 c=2"),
)
# Composite kernels without a catalog entry (issue 12: quadratures over the mixing law), built from their PDE text:
# name -> (PDE, label). build_entry and the benchmarks' CLI calls take the text in place of the name.
COMPOSITE_ENTRIES = {
    "heat-cauchy": ("u_t = lap(u) - fraclap(u, 1/2)", "heat + Cauchy (heat_nig, m=0)"),
    "heat-stable": ("u_t = lap(u) - 2*fraclap(u, 3/4)", "heat + 1.5-stable (heat_stable)"),
    "heat-cauchy-stable": ("u_t = lap(u) - fraclap(u, 1/2) - fraclap(u, 3/4)",
                           "heat + Cauchy + 1.5-stable (subordinator_sum)"),
}
LABELS = dict(ENTRIES) | {name: label for name, (_, label) in COMPOSITE_ENTRIES.items()}


def entry_source(entry: str) -> str:
    """What ``pde2gen build``/``check`` is given for a benchmark entry: its PDE text, or the catalog name."""
    return COMPOSITE_ENTRIES[entry][0] if entry in COMPOSITE_ENTRIES else entry


# Entries the analysis rejects (their verdicts and repairs are shown by bench/verdicts.py).
FAILING = ("wave", "schrodinger", "klein-gordon", "helmholtz", "hyperdiffusion", "telegraph", "viscous-wave")


# ------------------------------------------------------------------------------------------- output
_START = time.perf_counter()
if hasattr(signal, "SIGUSR1"):  # `kill -USR1 PID` prints where a long benchmark is spending its time
    faulthandler.register(signal.SIGUSR1, all_threads=True)


def timed_build(source: str, out: Path, **options) -> tuple[str, str | None]:
    """(cell, failure) for the build tables: the build's seconds, or "FAIL (Error)" and the error's first line
    (every failure is reported, never raised, so that one table shows them all)."""
    from pde2gen.build import build

    start = time.perf_counter()
    try:
        build(source, out, **options)
    except Exception as error:  # noqa: BLE001 - reported in the table; the bench then exits 1
        return f"FAIL ({type(error).__name__})", f"{type(error).__name__}: {str(error).splitlines()[0][:300]}"
    return f"{time.perf_counter() - start:.1f}s", None


def record_build(rows: dict, failures: list[str], name: str, dim: int, out: Path, **options) -> None:
    """Build ``name`` in N = ``dim`` into ``out`` (timed_build): its cell in rows[name][dim], its failure line, and a
    progress line on stderr."""
    cell, failure = timed_build(name, out, dim=dim, **options)
    if failure:
        failures.append(f"{name} N={dim}: {failure}")
    rows.setdefault(name, {})[dim] = cell
    print(f"{name:60s} N={dim:<5d} {cell}", file=sys.stderr, flush=True)


def dims_table(label: str, rows: dict, dims) -> list[str]:
    """Markdown lines of an entry x N table: one row per name, one column per dimension (rows[name][dim] cells)."""
    lines = [f"| {label} | " + " | ".join(f"N={d}" for d in dims) + " |", "|---|" + "---|" * len(dims)]
    return lines + [f"| {name} | " + " | ".join(cells.get(d, "") for d in dims) + " |" for name, cells in rows.items()]


def print_table(header: str, rows: list[str], failures: list[str], what: str = "builds") -> int:
    """A Markdown table of result rows, the count line and one line per failure; the exit code (1 on any failure)."""
    columns = header.count("|") - 1
    print(header + "\n" + "|---" * columns + "|")
    print("\n".join(rows))
    print(f"\n{len(rows)} {what}, {len(failures)} failed")
    print("\n".join(f"- {line}" for line in failures))
    return 1 if failures else 0


def log(message: str) -> None:
    """A progress line on stderr with the elapsed wall time of this run."""
    print(f"[{time.perf_counter() - _START:7.1f}s] {message}", file=sys.stderr, flush=True)


def write_json(path: Path, data) -> None:
    """JSON written through a temporary file and os.replace (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_json_default) + "\n")
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def save_figure(figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    figure.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
    os.replace(tmp, path)


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def git_revision() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=30, check=False).stdout.strip()
        return head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine(threads: int | None = None) -> dict:
    """What the numbers were measured on: CPU model, cores, load, torch and Python versions, git revision."""
    import torch

    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "usable_cores": usable,
        "torch_threads": threads if threads is not None else torch.get_num_threads(),
        "load_average_1m_at_start": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git": git_revision(),
        "compiler": compiler_source()[0],  # what the catalog entries were built with (see compiler_source)
    }


def machine_line(info: dict) -> str:
    return (f"{info['cpu']}, {info['usable_cores']} cores usable ({info['cores']} total), torch {info['torch']} "
            f"({info['torch_threads']} thread(s)), Python {info['python']}, load average {info.get('load_average_1m_at_start')} "
            f"at start, git {info['git']}; modules built by pde2gen from {info.get('compiler')}")


def describe_run(info: dict, budget: str, seeds, settings: dict) -> str:
    """One header line block printed above every table."""
    extra = ", ".join(f"{k}={v}" for k, v in settings.items())
    return f"machine: {machine_line(info)}\nbudget: {budget}; seeds: {list(seeds)}; {extra}"


def set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set in this process
        pass


# ------------------------------------------------------------------------------------------- builds
# The compiler the benchmarks build with: by default a snapshot of the last commit (git archive HEAD of pde2gen/,
# templates/, catalog/), so that files other people are editing in the shared working tree cannot leak half-made
# changes into a run, and every result names the exact commit it was built from. PDE2GEN_BENCH_COMMIT=SHA pins
# another commit (so that a chain of benchmarks shares one build, and the models cached by bench/methods.py);
# PDE2GEN_BENCH_WORKTREE=1 builds from the working tree instead.
USE_WORKTREE = os.environ.get("PDE2GEN_BENCH_WORKTREE") == "1"


def head_commit() -> str:
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True,
                          timeout=30).stdout.strip()


def compiler_source() -> tuple[str, Path]:
    """(key, folder holding the pde2gen package to build with): HEAD's snapshot, or the working tree."""
    if USE_WORKTREE:
        return "worktree-" + worktree_hash(), ROOT
    commit = os.environ.get("PDE2GEN_BENCH_COMMIT") or head_commit()
    folder = CACHE / "src" / commit[:12]
    if not (folder / "pde2gen" / "__init__.py").exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix="snapshot-", dir=CACHE))
        archive = subprocess.run(["git", "archive", commit, "pde2gen", "templates", "catalog"], cwd=ROOT,
                                 capture_output=True, check=True, timeout=120).stdout
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive, check=True, timeout=120)
        # what the wheel's data packages are: pde2gen.template_files / pde2gen.catalog_files (pyproject.toml)
        (tmp / "pde2gen" / "template_files").symlink_to("../templates")
        (tmp / "pde2gen" / "catalog_files").symlink_to("../catalog")
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(tmp, folder)
        except OSError:  # made meanwhile by another run
            subprocess.run(["rm", "-rf", str(tmp)], check=False)
    return "commit-" + commit[:12], folder


def worktree_hash() -> str:
    """Hash of the working tree's pde2gen/, templates/ and catalog/ files."""
    digest = hashlib.sha256()
    for folder in ("pde2gen", "templates", "catalog"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix in (".py", ".j2", ".toml"):
                digest.update(str(path.relative_to(ROOT)).encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def compiler_env(source: Path) -> dict:
    return {**os.environ, "PYTHONPATH": str(source)}


def cli_command(*arguments) -> list[str]:
    return [sys.executable, "-m", "pde2gen", *arguments]


def build_command(entry: str, outdir: Path, extra=()) -> list[str]:
    return cli_command("build", entry, "-o", str(outdir), "--force", *extra)


def run_cli(arguments, timeout: float = 600.0) -> tuple[float, subprocess.CompletedProcess | None]:
    """(wall seconds, completed process or None on timeout) of ``python -m pde2gen ARGUMENTS`` run with the
    benchmark's compiler (cwd = the compiler's folder, so that its pde2gen package is the one imported)."""
    _, source = compiler_source()
    start = time.perf_counter()
    try:
        done = subprocess.run(cli_command(*arguments), cwd=source, capture_output=True, text=True,
                              timeout=timeout, env=compiler_env(source), check=False)
    except subprocess.TimeoutExpired:
        return time.perf_counter() - start, None
    return time.perf_counter() - start, done


def build_entry(entry: str, *, timeout: float = 180.0, use_cache: bool = True) -> dict:
    """Build catalog entry ``entry`` with ``python -m pde2gen build`` (a subprocess with a time limit).

    Returns {"entry", "ok", "dir", "wall_s", "cached", "command", "error", "compiler"}; a failed build is
    recorded, not raised, and cached like a success for the same compiler (so a hanging build costs its timeout
    once per commit).
    """
    key, _ = compiler_source()
    folder = CACHE / key / entry
    record_path = CACHE / key / f"{entry}.build.json"
    if use_cache and record_path.exists():
        record = json.loads(record_path.read_text())
        if not record["ok"] or (folder / "process.py").exists():
            return {**record, "cached": True}
    folder.parent.mkdir(parents=True, exist_ok=True)
    source = entry_source(entry)
    shown = f"python -m pde2gen build {source if source == entry else repr(source)} -o OUTDIR"
    wall, done = run_cli(["build", source, "-o", str(folder), "--force"], timeout=timeout)
    if done is None:
        ok, error = False, f"timed out after {timeout:.0f} s (no module written)"
    else:
        ok = done.returncode == 0
        error = None if ok else f"exit {done.returncode}: " + " | ".join(
            line.strip() for line in (done.stderr or done.stdout).strip().splitlines()[-3:])
    record = {"entry": entry, "ok": ok, "dir": str(folder), "wall_s": round(wall, 2), "command": shown,
              "error": error, "compiler": key}
    write_json(record_path, record)
    return {**record, "cached": False}


def build_all(entries, *, timeout: float = 180.0) -> dict[str, dict]:
    records = {}
    for entry in entries:
        record = build_entry(entry, timeout=timeout)
        state = "ok" if record["ok"] else f"FAILED ({record['error']})"
        when = "cached" if record["cached"] else f"{record['wall_s']} s"
        log(f"build {entry}: {state} ({when})")
        records[entry] = record
    return records


def start_run(name: str, args, entries) -> tuple[dict, dict[str, dict], dict[str, SimpleNamespace]]:
    """The opening of a benchmark run: torch threads, the machine record, and ``entries`` built and imported.
    Returns (machine info, build records, modules of the entries that built); failed builds stay in the records
    for the tables (``build_failures``)."""
    set_threads(args.threads)
    info = machine(args.threads)
    log(f"{name}, budget {args.budget}: {machine_line(info)}")
    builds = build_all(entries, timeout=args.build_timeout)
    modules = {entry: load_module(record["dir"]) for entry, record in builds.items() if record["ok"]}
    return info, builds, modules


def build_failures(builds: dict[str, dict]) -> list[str]:
    """One markdown line per catalog entry that did not build (so was not measured), with its error."""
    return [f"- **not built: {name}** — `{b['command']}`: {b['error']}" for name, b in builds.items() if not b["ok"]]


def _load_file(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_module(directory) -> SimpleNamespace:
    """Import a generated module's process.py, model.py, images.py and train.py under unique names, side by side
    with other generated modules (train.py's ``from model import ...`` is served from the right directory)."""
    directory = Path(directory)
    tag = "p2g_" + hashlib.sha1(str(directory.resolve()).encode()).hexdigest()[:10]
    saved = {name: sys.modules.get(name) for name in ("process", "model", "images")}
    try:
        process = _load_file(f"{tag}_process", directory / "process.py")
        sys.modules["process"] = process
        model = _load_file(f"{tag}_model", directory / "model.py")
        sys.modules["model"] = model
        if (directory / "images.py").exists():  # modules generated before images.py existed lack it
            sys.modules["images"] = _load_file(f"{tag}_images", directory / "images.py")
        train = _load_file(f"{tag}_train", directory / "train.py")
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    config = json.loads((directory / "pde2gen.json").read_text())
    return SimpleNamespace(dir=directory, process=process, model=model, train=train, config=config)


# ------------------------------------------------------------------------------------------- stats
def mean_std(values) -> tuple[float, float]:
    import numpy as np

    values = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if len(values) == 0:
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0


def fmt(mean: float, std: float | None = None, digits: int = 3) -> str:
    import math

    if mean is None or not math.isfinite(mean):
        return "n/a"
    text = f"{mean:.{digits}g}" if abs(mean) >= 1e-3 or mean == 0 else f"{mean:.2e}"
    if std is not None and math.isfinite(std):
        text += f" ± {std:.2g}" if abs(std) >= 1e-3 or std == 0 else f" ± {std:.1e}"
    return text


def markdown_table(header, rows) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def benchmark_main(name: str, doc: str, budgets, run, tables, figure=None, *, builds: bool = True,
                   argv=None) -> int:
    """The command line shared by the benchmark scripts: ``--budget`` picks the settings, ``run(args)`` measures
    and writes results/<name>_<budget>.json, then the tables (.md) and the figure (.png) are written from that
    JSON. ``--report-only`` redraws .md and .png from an existing JSON without measuring anything."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--budget", choices=tuple(budgets), default="tiny")
    if builds:
        parser.add_argument("--threads", type=int, default=1, help="torch threads")
        parser.add_argument("--build-timeout", type=float, default=180.0, help="seconds per pde2gen build")
    parser.add_argument("--report-only", action="store_true",
                        help=f"rewrite {name}_BUDGET.md/.png from the existing {name}_BUDGET.json")
    args = parser.parse_args(argv)
    path = RESULTS / f"{name}_{args.budget}.json"
    if args.report_only:
        if not path.exists():
            print(f"error: {path.relative_to(ROOT)} not found: run without --report-only first", file=sys.stderr)
            return 2
        data = json.loads(path.read_text())
    else:
        data = json.loads(json.dumps(run(args), default=_json_default))
    text = tables(data)
    written = [path, RESULTS / f"{name}_{args.budget}.md"]
    write_text(written[1], text + "\n")
    if figure is not None:
        written.append(RESULTS / f"{name}_{args.budget}.png")
        figure(data, written[-1])
    print(text)
    print("wrote " + ", ".join(str(p.relative_to(ROOT)) for p in written))
    return 0
