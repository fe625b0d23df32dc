"""Cost per catalog entry, relative to the flow-matching baseline measured in the same run.

    python bench/cost.py --budget tiny     # ~3 min: diffusion, pfgm, kac; few repeats
    python bench/cost.py --budget small    # the README numbers: every entry
    python bench/cost.py --budget marginal # only the exact marginal velocity, of the families with tables or quadratures

Per entry (2-D points, the benchmarks' MLP, batch 256; images (1, 8, 8), batch 64):
  process   : one draw of the training pair (Process.sample_train_time + sample_location_and_conditional_flow)
              against torch.randn of the same shape;
  train step: the generated training step (model.flow_matching_loss, backward, AdamW) against the flow-matching
              step of bench/methods.py with the same backbone and batch;
  sampling  : 1000 samples with Heun, NFE 20, prior draw included, against flow matching;
the two sides alternate ``repeat`` times in one process and the figure is the ratio of medians (entry / FM,
> 1 = slower), so machine load hits both alike. Also ``pde2gen check NAME --json`` and ``pde2gen build NAME``
wall times (fresh interpreters) against ``python -c "import sympy"``, and kernel sampling throughput against
torch.randn from bench/bench_sampling.py (run in a subprocess with its output redirected to
bench/results/cost_<budget>_sampling.json, so that its own results file is left alone).
Exact marginal velocity (Process.marginal_velocity, what ``sample.py --exact`` integrates) per (sample, data point)
pair against the diffusion entry's (Gaussian), alternated in one process: N = 2 (64 samples x 2000 data points) and
N = 3072 (8 x 200), at the times t(sigma) of the listed sigmas (issue 11's goal: <= 5x the Gaussian's). Every call
is at a time of its own, as in an ODE step (t(sigma (1 + 1e-4 k)) for the k-th call), so that what a family keeps
per t (the radial profiles of heat_nig and heat_stable) is built inside the timing.
Entries are catalog names or the composite kernels of _common.COMPOSITE_ENTRIES (built from their PDE text).

Writes bench/results/cost_<budget>.json and .md.
"""
from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C
import methods as M

BUDGETS = {
    "tiny": {"entries": ("diffusion", "pfgm", "kac"), "repeat": 5, "cli_repeat": 1,
             "sampling_args": ["--repeat", "2", "--batch", "512", "--dim", "3072"], "marginal_sigmas": [0.5]},
    "small": {"entries": (*(n for n, _ in C.ENTRIES), *C.COMPOSITE_ENTRIES), "repeat": 15, "cli_repeat": 3,
              "sampling_args": ["--repeat", "5"], "marginal_sigmas": [0.05, 0.5, 5.0]},
    # the marginal-velocity table alone (no training steps, CLI times or kernel throughput)
    "marginal": {"entries": ("diffusion", "yukawa", "fractional", *C.COMPOSITE_ENTRIES), "repeat": 5, "cli_repeat": 0,
                 "sampling_args": [], "marginal_sigmas": [0.05, 0.5, 5.0], "marginal_only": True},
}
# (label, N, samples, data points) of the marginal-velocity timing
MARGINAL_CASES = (("N=2", 2, 64, 2000), ("N=3072", 3072, 8, 200))
MARGINAL_ROUNDS = 7  # alternations per cell (5 before; the Kac a = 25 cell at sigma = 0.5 read 4.94x and 6.66x in two runs)
MARGINAL_BASELINE = "diffusion"


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def alternate(a, b, repeat: int) -> tuple[float, float]:
    """Median times of ``a`` and ``b`` called alternately ``repeat`` times each after a warm-up, in the order
    a b, b a, a b, ... so that whatever favours the first (or second) call of a pair falls on both sides (the
    diffusion row of the marginal table, diffusion against itself, read 1.37 at one cell with a always first)."""
    times = rounds([a, b], repeat)
    return statistics.median(times[0]), statistics.median(times[1])


def rounds(calls, repeat: int) -> list[list[float]]:
    """Times of each of ``calls`` over ``repeat`` rounds after a warm-up round; round k calls them in the order
    rotated by k (two calls: a b, b a, a b, ...), so every call takes every place in the sequence in turn."""
    for call in calls:
        call()
    times = [[] for _ in calls]
    for index in range(repeat):
        shift = index % len(calls)
        for k in [*range(shift, len(calls)), *range(shift)]:
            times[k].append(timed(calls[k]))
    return times


def median_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of the ratio of two calls timed in the same round (drifts between rounds cancel)."""
    return statistics.median(x / y for x, y in zip(numerator, denominator))


def runtime_costs(module, heat_module, fm: M.FlowMatching, repeat: int) -> dict:
    """Per input shape: the module's kernel draw against torch.randn, and its training step and sampling against
    flow matching and against the heat module (issue 11's goals), all three in the same rounds."""
    generated = M.Generated("x", "x", module)
    heat = M.Generated("heat", "heat", heat_module)
    return {name: shape_costs(generated, heat, fm, shape, batch, net, repeat, with_sampling=name == "2-D")
            for name, shape, batch, net in (("2-D", [2], 256, "mlp-s"), ("8x8", [1, 8, 8], 64, "mlp-m"))}


def shape_costs(generated, heat, fm, shape, batch, net, repeat, with_sampling) -> dict:
    config = M.backbone_configs(net, shape)
    samples = torch.randn(2048, *shape).double().numpy()
    stats = M.data_statistics(samples)
    stats["samples"] = samples
    torch.manual_seed(0)
    model = generated.make_model(stats, config)
    baseline = fm.make_model(stats, config)
    baseline.backbone.load_state_dict(model.backbone.state_dict())
    heat_model = heat.make_model(stats, config)
    heat_model.backbone.load_state_dict(model.backbone.state_dict())
    y = torch.from_numpy(samples[:batch]).float()
    g = torch.Generator().manual_seed(0)
    process = model.process

    def draw():
        t = process.sample_train_time(batch, generator=g)
        process.sample_location_and_conditional_flow(y, t, generator=g)

    t_proc, t_randn = alternate(draw, lambda: torch.randn(y.shape, generator=g), repeat)
    opt_a = torch.optim.AdamW(model.parameters(), lr=1e-4)
    opt_b = torch.optim.AdamW(baseline.parameters(), lr=1e-4)

    def step(method, net, optimizer):
        def run():
            loss = method.loss(net, y, g)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        return run

    opt_h = torch.optim.AdamW(heat_model.parameters(), lr=1e-4)
    t_gen, t_fm, t_heat = rounds([step(generated, model, opt_a), step(fm, baseline, opt_b),
                                  step(heat, heat_model, opt_h)], repeat)
    entry = {"batch": batch, "process_ms": 1e3 * t_proc, "randn_ms": 1e3 * t_randn,
             "process_vs_randn": t_proc / t_randn, "train_step_ms": 1e3 * statistics.median(t_gen),
             "fm_step_ms": 1e3 * statistics.median(t_fm), "train_step_vs_fm": median_ratio(t_gen, t_fm),
             "train_step_vs_heat": median_ratio(t_gen, t_heat)}
    if with_sampling:
        for net in (model, baseline, heat_model):
            net.eval()
        s_gen, s_fm, s_heat = rounds([lambda: M.sample(generated, model, 1000, "heun", 20, seed=0),
                                      lambda: M.sample(fm, baseline, 1000, "heun", 20, seed=0),
                                      lambda: M.sample(heat, heat_model, 1000, "heun", 20, seed=0)], max(3, repeat // 2))
        entry.update({"sample_ms": 1e3 * statistics.median(s_gen), "fm_sample_ms": 1e3 * statistics.median(s_fm),
                      "sample_vs_fm": median_ratio(s_gen, s_fm), "sample_vs_heat": median_ratio(s_gen, s_heat)})
    return entry


def cli_times(entry: str, build_record: dict, repeat: int) -> dict:
    """Wall times of fresh ``pde2gen check`` / ``build`` processes (the benchmarks' compiler, see _common)."""

    def sympy_import():
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import sympy"], capture_output=True, timeout=300, check=False)
        return time.perf_counter() - start

    checks, sympy = [], []
    for _ in range(repeat):
        wall, done = C.run_cli(["check", C.entry_source(entry), "--json"])
        checks.append((wall, None if done is None else done.returncode))
        sympy.append(sympy_import())
    out = {"check_s": statistics.median(t for t, _ in checks), "check_exit": checks[0][1],
           "sympy_import_s": statistics.median(sympy)}
    if build_record["ok"]:
        folder = Path(tempfile.mkdtemp(prefix="pde2gen-cost-"))
        try:
            wall, done = C.run_cli(["build", C.entry_source(entry), "-o", str(folder / "m"), "--force"], timeout=900)
            out.update({"build_s": wall, "build_exit": None if done is None else done.returncode})
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    else:
        out.update({"build_s": None, "build_error": build_record["error"],
                    "build_timed_out_s": build_record["wall_s"]})
    return out


def kernel_throughput(args_list, budget: str) -> dict | None:
    script = C.BENCH / "bench_sampling.py"
    if not script.exists():
        return {"error": "bench/bench_sampling.py is not in this checkout"}
    out = C.RESULTS / f"cost_{budget}_sampling.json"
    code = ("import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); import bench_sampling as b; "
            "b.RESULTS = Path(sys.argv[2]); sys.argv = ['bench_sampling.py'] + sys.argv[3:]; b.main()")
    done = subprocess.run([sys.executable, "-c", code, str(C.BENCH), str(out), "--threads", "1", *args_list],
                          cwd=C.ROOT, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["?"])[-1]}
    return {"command": "python bench/bench_sampling.py --threads 1 " + " ".join(args_list),
            "output": done.stdout, **json.loads(out.read_text())}


def marginal_costs(module, baseline, sigmas, repeat: int) -> dict:
    """Process.marginal_velocity of ``module`` against ``baseline``'s (the Gaussian), per (sample, data point) pair,
    alternated ``repeat`` times after a warm-up (which also builds any per-(alpha, N) table of the stable family);
    the k-th call of each side is at t(sigma (1 + 1e-4 k)), a time no call used before (float32 t: distinct)."""
    out = {}
    for label, n, batch, references in MARGINAL_CASES:
        generator = torch.Generator().manual_seed(0)
        data = torch.randn(references, n, generator=generator)
        x = data[:batch] + 0.3 * torch.randn(batch, n, generator=generator)
        processes = [m.process.Process(shape=(n,)) for m in (baseline, module)]
        for sigma in sigmas:
            calls = []
            for process in processes:
                sigmas_k = sigma * (1 + 1e-4 * torch.arange(repeat + 1, dtype=torch.float64))
                times = iter(process.t_of_sigma(sigmas_k).tolist())
                calls.append(lambda process=process, times=times, x=x, data=data:
                             process.marginal_velocity(x, next(times), data))
            base_s, entry_s = alternate(calls[0], calls[1], repeat)
            pairs = batch * references
            out[f"{label} sigma={sigma:g}"] = {"gaussian_us_per_pair": 1e6 * base_s / pairs,
                                                "us_per_pair": 1e6 * entry_s / pairs, "ratio": entry_s / base_s}
    return out


def run(args):
    budget = BUDGETS[args.budget]
    marginal_only = budget.get("marginal_only", False)
    info, builds, modules = C.start_run("cost", args, budget["entries"])
    some = next(iter(modules.values()))
    fm = M.FlowMatching(some.model.build_backbone)
    rows = []
    for entry in budget["entries"]:
        C.log(f"{entry}: runtime costs and check/build wall times")
        row = {"entry": entry, "family": modules[entry].config["family"] if entry in modules else None}
        if entry in modules and not marginal_only:
            row["runtime"] = runtime_costs(modules[entry], modules[MARGINAL_BASELINE], fm, budget["repeat"])
        if entry in modules and MARGINAL_BASELINE in modules:
            C.log(f"{entry}: exact marginal velocity per pair against {MARGINAL_BASELINE}")
            row["marginal"] = marginal_costs(modules[entry], modules[MARGINAL_BASELINE], budget["marginal_sigmas"],
                                             MARGINAL_ROUNDS)
        if not marginal_only:
            row["cli"] = cli_times(entry, builds[entry], budget["cli_repeat"])
        rows.append(row)
        C.write_json(C.RESULTS / f"cost_{args.budget}.json", payload(args, info, budget, builds, rows, None, True))
    throughput = None
    if not marginal_only:
        C.log("kernel sampling throughput (bench/bench_sampling.py)")
        throughput = kernel_throughput(budget["sampling_args"], args.budget)
    data = payload(args, info, budget, builds, rows, throughput, False)
    C.write_json(C.RESULTS / f"cost_{args.budget}.json", data)
    return data


def payload(args, info, budget, builds, rows, throughput, partial):
    return {"benchmark": "cost", "command": f"python bench/cost.py --budget {args.budget}", "budget": args.budget,
            "partial": partial, "machine": info, "load_average_now": list(os.getloadavg()), "settings": {k: list(v) if isinstance(v, tuple) else v
                                                               for k, v in budget.items()},
            "builds": builds, "rows": rows, "kernel_throughput": throughput}


def tables(data) -> str:
    out = [f"Command: `{data['command']}`", "",
           C.describe_run(data["machine"], data["budget"], [0], {"repeats": data["settings"]["repeat"]}), ""]
    header = ["entry", "family", "process draw ms (2-D, B=256) [/ randn]", "process draw ms (8x8, B=64) [/ randn]",
              "train step / FM (2-D)", "train step / FM (8x8)", "sampling / FM (Heun 20, 1000 pts)",
              "train step / heat module (2-D, 8x8)", "sampling / heat module", "train step ms (2-D)", "check s",
              "build s"]
    # issue 11's goals are against the heat module (the diffusion entry) with the same network, timed in the same
    # rounds as the entry (results files from before that: the ratio of the two FM ratios of the run)
    heat = next((r.get("runtime") for r in data["rows"] if r["entry"] == "diffusion" and r.get("runtime")), None)

    def against_heat(rt, key, shape):
        direct = key.replace("_vs_fm", "_vs_heat")
        if direct in rt[shape]:
            return f"{rt[shape][direct]:.2f}"
        return f"{rt[shape][key] / heat[shape][key]:.2f}" if heat else "-"

    body = []
    for r in (r for r in data["rows"] if "cli" in r):
        rt = r.get("runtime")
        cli = r["cli"]
        if rt:
            cells = [f"{rt['2-D']['process_ms']:.2f} [{rt['2-D']['process_vs_randn']:.0f}x]",
                     f"{rt['8x8']['process_ms']:.2f} [{rt['8x8']['process_vs_randn']:.0f}x]",
                     f"{rt['2-D']['train_step_vs_fm']:.2f}", f"{rt['8x8']['train_step_vs_fm']:.2f}",
                     f"{rt['2-D']['sample_vs_fm']:.2f}",
                     f"{against_heat(rt, 'train_step_vs_fm', '2-D')}, {against_heat(rt, 'train_step_vs_fm', '8x8')}",
                     against_heat(rt, "sample_vs_fm", "2-D"), f"{rt['2-D']['train_step_ms']:.1f}"]
        else:
            cells = ["not built"] * 8
        build = f"{cli['build_s']:.1f}" if cli.get("build_s") else f"failed: {cli.get('build_error')}"
        body.append([C.LABELS.get(r["entry"], r["entry"]), r["family"] or "-", *cells,
                     f"{cli['check_s']:.1f} (exit {cli['check_exit']})", build])
    sympy = [r["cli"]["sympy_import_s"] for r in data["rows"] if "cli" in r]
    if data.get("load_average_now"):
        out += [f"Load average (1, 5, 15 min) when these results were written: "
                f"{', '.join(f'{v:.2f}' for v in data['load_average_now'])} (2 cores)", ""]
    if body:
        out += [("Ratios: entry / reference timed in the same rounds of one process, the order rotated every round "
                "(median over rounds of the per-round ratio); '/ heat module' against the diffusion entry's module with "
                "the same network (goals: training step <= 1.2, Kac <= 1.3; sampling <= 1.5); "
                f"`python -c 'import sympy'` took {statistics.median(sympy):.2f} s (median) in the same run"), "",
                C.markdown_table(header, body), ""]
    marginal_rows = [r for r in data["rows"] if r.get("marginal")]
    if marginal_rows:
        cases = list(marginal_rows[0]["marginal"])
        header = ["entry", *[f"{case} [us/pair: entry / Gaussian]" for case in cases]]
        body = [[C.LABELS.get(r["entry"], r["entry"]),
                 *[f"{r['marginal'][case]['ratio']:.2f} [{r['marginal'][case]['us_per_pair']:.3g} / "
                   f"{r['marginal'][case]['gaussian_us_per_pair']:.3g}]" for case in cases]]
                for r in marginal_rows]
        out += [("Exact marginal velocity (Process.marginal_velocity) per (sample, data point) pair / the diffusion "
                 f"entry's (Gaussian), alternated {MARGINAL_ROUNDS} times in one process (goal <= 5); N = 2: 64 "
                 "samples x 2000 data points, N = 3072: 8 x 200, at t(sigma), every call at a time of its own (per-t "
                 "tables built inside the timing); in brackets both sides' medians, so that a baseline that moved "
                 "shows"), "", C.markdown_table(header, body), ""]
    kt = data.get("kernel_throughput")
    # bench/bench_sampling.py's JSON: "rows", or "tables": [{"threads": k, "rows": [...]}] in later versions
    tables_ = [{"threads": kt.get("threads"), "rows": kt["rows"]}] if kt and "rows" in kt else (
        kt.get("tables", []) if kt else [])
    if tables_:
        header = ["family", "threads", "randn ms", "family ms", "randn / family (wall)", "randn / family (CPU)",
                  "goal"]
        body = [[r["family"], t.get("threads"), f"{r['randn_ms']:.1f}", f"{r['family_ms']:.1f}", f"{r['ratio']:.2f}",
                 f"{r['cpu_ratio']:.2f}", "-" if r.get("goal") is None else f">= {r['goal']}"]
                for t in tables_ for r in t["rows"]]
        out += [(f"Kernel sampling throughput (`{kt['command']}`: B = {kt['batch']}, N = {kt['dim']}, float32; "
                "> 1 = faster than torch.randn)"), "", C.markdown_table(header, body), ""]
    elif kt:
        out += [f"Kernel sampling throughput: not measured ({kt.get('error', 'unknown output format')})", ""]
    return "\n".join(out)


def main(argv=None) -> int:
    return C.benchmark_main("cost", __doc__, BUDGETS, run, tables, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
