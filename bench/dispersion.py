"""Dispersion relations of the catalog: how fast each Fourier mode decays, -Re lambda_j(k), against k at N = 2
for every benchmarked s-generative entry and every rejected one (condition C2), from the compiler core alone.

    python bench/dispersion.py --budget small    # < 10 s, no training: the README figure
    python bench/dispersion.py                   # the same settings as budget "tiny" (the default budget)

For each catalog entry with its default parameters, at N = 2 (Kac with its catalog construction, "product"):
``pde2gen.parse`` -> ``pde2gen.analysis.analyse`` (repairs off: the verdict is all we read), then the branches
lambda_j(k) of P(lambda, k^2) = 0 on a log grid of k through pde2gen.report.plots' helpers (``numeric_dispersion``,
``branch_values``, ``carrying_branches``, ``smoothing_failure``: what ``pde2gen plot NAME`` draws). Only the
branches that carry the density are drawn: augmented problems (PFGM, PFGM++, Yukawa, Helmholtz) keep their
decaying root and discard the growing one, which the table lists as discarded. C2 asks lambda*(k) < lambda*(0)
for every k > 0, lambda* the largest Re lambda over the carrying branches; where pde2gen finds it violated on
the grid (``smoothing_failure``) the curve is marked red. The C0/C1/C2 statuses in the table are the analysis'
own, computed now; the figure is about C2 only (C1, the sign of the kernel, is not a property of lambda(k)).

pde2gen is imported from the benchmarks' compiler (bench/_common.py: a snapshot of HEAD, or of
PDE2GEN_BENCH_COMMIT), like the other benchmarks' ``python -m pde2gen`` runs. Nothing here uses torch; only
``C.machine()`` imports it, to record its version with the machine.

Writes bench/results/dispersion_<budget>.json, .md and dispersion_<budget>.png.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

SETTINGS = {"dim": 2, "k_range": (1e-2, 1e2), "points": 161, "window": (0.1, 10.0), "window_points": 201}
BUDGETS = {"tiny": SETTINGS, "small": SETTINGS}
# symlog's linear range of the rate axis: the undamped branches (-Re lambda = 0) sit on its floor.
LINTHRESH = 1e-9
# Curve colours: no red, which marks where C2 fails.
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:gray", "tab:olive",
           "tab:cyan", "black")


def _compiler():
    """Import the benchmarks' pde2gen: a snapshot of the pinned commit (or the working tree with
    PDE2GEN_BENCH_WORKTREE=1); returns its key."""
    key, source = C.compiler_source()
    if str(source) not in sys.path:
        sys.path.insert(0, str(source))
    import pde2gen

    if Path(pde2gen.__file__).resolve().parent != (Path(source) / "pde2gen").resolve():
        raise SystemExit(f"pde2gen was already imported from {pde2gen.__file__}, not from {source}")
    return key


def k_grid(settings: dict) -> np.ndarray:
    """The plotted wave numbers (not stored in the JSON: the figure rebuilds them from the settings)."""
    lo, hi = settings["k_range"]
    return np.logspace(math.log10(lo), math.log10(hi), settings["points"])


def _round(values, digits: int = 6) -> list:
    return [float(f"{v:.{digits}g}") for v in np.asarray(values, dtype=float)]


def _short(text: str, limit: int = 110) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def measure(name: str, settings: dict) -> dict:
    """Verdict, branches and decay rates of one catalog entry (pde2gen core only)."""
    import sympy as sp

    from pde2gen.analysis.analyse import analyse
    from pde2gen.report.plots import (
        _runs,
        branch_values,
        carrying_branches,
        numeric_dispersion,
        smoothing_failure,
    )
    from pde2gen.spec.parse import parse

    start = time.perf_counter()
    spec = parse(name, dim=settings["dim"])  # construction None: the catalog's own (Kac: product)
    analysis = analyse(spec, repairs=False)
    row = {"entry": name, "pde": spec.pretty(), "construction": spec.construction,
           "parameters": {p.name: sp.sstr(p.value) for p in spec.parameters if p.value is not None},
           "s_generative": analysis.s_generative,
           "conditions": {c.name: {"status": c.status, "reason": c.reason} for c in analysis.conditions}}
    if analysis.dispersion is None:
        row.update(plotted=False, note=f"no dispersion relation: {analysis.condition('C0').reason}")
        return row
    disp, note = numeric_dispersion(analysis)
    row["problem_type"] = disp.problem_type
    row["augmented_dims"] = None if disp.augmented_dims is None else sp.sstr(
        disp.augmented_dims.xreplace(disp.spec.parameter_values()))
    if note:
        row["note"] = note

    k = k_grid(settings)
    roots, labels = branch_values(disp, k * k)
    carrying = carrying_branches(disp, k * k, roots)
    growth, growth0, fails = smoothing_failure(disp, k * k)
    row["branches"] = [{"lambda": label, "carries": carries} for label, carries in zip(labels, carrying)]
    # -lambda*(k), the decay rate of the slowest carried mode (what C2 is about), and -Re lambda of every other
    # carrying branch where it differs from it somewhere (Kac's fast branch)
    row["slowest"] = _round(-growth)
    row["other_branches"] = [_round(-roots[:, b].real) for b in range(roots.shape[1]) if carrying[b]
                             and not np.allclose(-roots[:, b].real, -growth, rtol=1e-9, atol=1e-12)]
    row["growth0"] = float(growth0) + 0.0  # lambda*(0); + 0.0: no -0
    row["c2_fails_runs"] = [[int(a), int(b)] for a, b in _runs(fails)]  # [start, stop) indices into k_grid
    if np.any(fails):
        row["c2_fails_k"] = [float(k[fails].min()), float(k[fails].max())]
    w_lo, w_hi = settings["window"]
    kw = np.logspace(math.log10(w_lo), math.log10(w_hi), settings["window_points"])
    growth_w, _, _ = smoothing_failure(disp, kw * kw)
    i = int(np.argmax(growth_w))
    row["window_slowest_decay"] = {"rate": float(-growth_w[i]) + 0.0, "k": float(kw[i])}
    gap = growth0 - growth_w
    j = int(np.argmin(gap))
    row["window_min_gap"] = {"gap": float(gap[j]) + 0.0, "k": float(kw[j])}
    row["plotted"] = True
    # does the figure agree with the verdict? (C2 FAIL <=> failing wave numbers on the plotted grid)
    c2 = row["conditions"]["C2"]["status"]
    row["figure_agrees_with_c2"] = (c2 == "FAIL") == bool(np.any(fails)) if c2 in ("PASS", "FAIL") else None
    row["wall_s"] = round(time.perf_counter() - start, 3)
    return row


def run(args):
    settings = BUDGETS[args.budget]
    compiler = _compiler()
    info = C.machine(1)
    C.log(f"dispersion, budget {args.budget}: {C.machine_line(info)}")
    rows = []
    for panel, names in (("s-generative", [n for n, _ in C.ENTRIES]), ("failing", list(C.FAILING))):
        for name in names:
            row = measure(name, settings)
            row["panel"] = panel
            row["label"] = C.LABELS.get(name, name)
            rows.append(row)
            c = row["conditions"]
            C.log(f"{name}: C0 {c['C0']['status']} C1 {c['C1']['status']} C2 {c['C2']['status']}, "
                  f"{len(row.get('branches', []))} branch(es), "
                  f"figure agrees with C2: {row.get('figure_agrees_with_c2')}")
    data = {"benchmark": "dispersion", "command": f"python bench/dispersion.py --budget {args.budget}",
            "budget": args.budget, "machine": info, "compiler": compiler,
            "settings": {**settings, "linthresh": LINTHRESH}, "rows": rows}
    C.write_json(C.RESULTS / f"dispersion_{args.budget}.json", data)
    return data


# ------------------------------------------------------------------------------------------- report
def _is_zero(values) -> bool:
    return bool(np.all(np.abs(np.asarray(values)) <= LINTHRESH * 1e-3))


def why(row: dict) -> str:
    """One phrase: the C2 status read from the analysis, and what the curve shows (built from the data)."""
    c = row["conditions"]
    others = [n for n in ("C0", "C1") if c[n]["status"] != "PASS"]
    if c["C2"]["status"] == "FAIL":
        if row.get("plotted") and _is_zero(row["slowest"]):
            text = "C2 FAIL: Re lambda = 0 for every k, modes oscillate forever"
        elif row.get("c2_fails_k"):
            lo, hi = row["c2_fails_k"]
            text = (f"C2 FAIL: Re lambda*(k) = lambda*(0) for k in [{lo:.3g}, {hi:.3g}] on the plot, "
                    "those modes never decay")
        else:
            text = "C2 FAIL"
        return text + (f" (also {', '.join(f'{n} FAIL' for n in others)})" if others else "")
    if others:
        return (f"C2 {c['C2']['status']}: every mode decays; fails "
                + ", ".join(f"{n} ({'kernel takes negative values' if n == 'C1' else 'admissibility'})"
                            for n in others))
    return f"C2 {c['C2']['status']}: every mode decays" + ("" if row["s_generative"] else " (not s-generative)")


def _branch_cell(row: dict) -> str:
    if not row.get("branches"):
        return "n/a"
    parts = []
    for b in row["branches"]:
        text = f"`{b['lambda']}`"
        if not b["carries"]:
            text += (" (growing root, discarded)" if row.get("problem_type") == "augmented"
                     else " (amplitude 0, carries nothing)")
        parts.append(text)
    return "; ".join(parts)


def _params(row: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in row["parameters"].items()) or "none"


def _window_cell(row: dict) -> str:
    if not row.get("plotted"):
        return "n/a"
    w = row["window_slowest_decay"]
    return f"{C.fmt(w['rate'])} (k = {w['k']:.3g})"


def _gap_cell(row: dict) -> str:
    if not row.get("plotted"):
        return "n/a"
    g = row["window_min_gap"]
    return f"{C.fmt(g['gap'])} (k = {g['k']:.3g})"


def tables(data) -> str:
    s = data["settings"]
    lo, hi = s["window"]
    out = [(f"Command: `{data['command']}` (pde2gen.parse + pde2gen.analysis.analyse + pde2gen.report.plots' branch helpers, no "
           "training)"), "", f"machine: {C.machine_line(data['machine'])}", "",
           (f"Every catalog entry at N = {s['dim']} with its default parameters (and its catalog construction). "
            "Branches as `pde2gen check` prints them, in s = k^2; lambda*(k) is the largest Re lambda over the "
            "branches that carry the density, and C2 asks lambda*(k) < lambda*(0) for every k > 0. "
            f"'slowest decay' is min -lambda*(k) over k in [{lo:g}, {hi:g}]; 'smallest gap' is min "
            "lambda*(0) - lambda*(k) there (what C2 needs positive). C0/C1/C2 are the analysis' statuses, "
            "computed by this run."), ""]
    header = ["entry", "parameters", "problem", "branches lambda(s), s = k^2", "C0", "C1", "C2",
              "what the figure shows", "lambda*(0)", f"slowest decay, k in [{lo:g}, {hi:g}]",
              f"smallest gap, k in [{lo:g}, {hi:g}]"]
    for panel, title in (("s-generative", "**Benchmarked s-generative entries** (left panel)"),
                         ("failing", "**Rejected entries** (right panel): which condition fails")):
        body = []
        for r in data["rows"]:
            if r["panel"] != panel:
                continue
            c = r["conditions"]
            problem = r.get("problem_type", "n/a") + (f", {r['construction']}" if r["construction"] != "isotropic"
                                                      else "")
            if r.get("augmented_dims"):
                problem += f", D = {r['augmented_dims']}"
            shown = why(r)
            if not r.get("plotted"):
                shown = f"not drawn: {r.get('note')}"
            elif r.get("figure_agrees_with_c2") is False:
                shown += " — the plotted grid DISAGREES with this C2 status"
            body.append([r["label"], _params(r), problem, _branch_cell(r), c["C0"]["status"], c["C1"]["status"],
                         c["C2"]["status"], shown, C.fmt(r["growth0"]) if "growth0" in r else "n/a",
                         _window_cell(r), _gap_cell(r)])
        out += [title, "", C.markdown_table(header, body), ""]
    failing = [r for r in data["rows"] if r["panel"] == "failing"]
    first = []
    for r in failing:
        bad = [f"{n}: {_short(r['conditions'][n]['reason'])}" for n in ("C0", "C1", "C2")
               if r["conditions"][n]["status"] != "PASS"]
        first.append(f"- **{r['label']}**: " + "; ".join(bad))
    out += ["Reasons the analysis gives for each failing condition (shortened):", "", *first, ""]
    same = []
    for r in failing:
        for g in data["rows"]:
            if (g["panel"] == "s-generative" and r.get("plotted") and g.get("plotted")
                    and _same_curves(r, g, rtol=1e-9)):
                same.append(f"{r['label']} ({r['construction']}, C1 {r['conditions']['C1']['status']}) and "
                            f"{g['label']} ({g['construction']}, C1 {g['conditions']['C1']['status']})")
    if same:
        out += [("Same branches in both panels: " + "; ".join(same) + ". The dispersion relation cannot tell them "
                 "apart: C2 holds for both, and only the construction, through C1, separates them."), ""]
    pfgmpp = [r["label"] for r in data["rows"] if r.get("augmented_dims")]
    if pfgmpp:
        out += [("Note: for the radial augmentations (" + ", ".join(pfgmpp) + ") the curve is the kept root -k of "
                 "lambda^2 = k^2, the same for every D; D enters the kernel (ghat is the Student-t characteristic "
                 "function of c t k, which decays like exp(-c t k) only for c t k >> D), not the branches."), ""]
    return "\n".join(out)


def _curves(row: dict) -> list:
    return [row["slowest"], *row["other_branches"]]


def _same_curves(a: dict, b: dict, rtol: float) -> bool:
    return len(_curves(a)) == len(_curves(b)) and all(
        np.allclose(x, y, rtol=rtol, atol=1e-12) for x, y in zip(_curves(a), _curves(b)))


def _groups(rows):
    """Rows whose curves and C2 reading coincide (PFGM and PFGM++ at every D) are drawn as one line."""
    groups = []
    for r in rows:
        for g in groups:
            ref = g[0]
            same_reading = why(ref) == why(r) and ref["c2_fails_runs"] == r["c2_fails_runs"]
            if same_reading and _same_curves(ref, r, rtol=1e-6):
                g.append(r)
                break
        else:
            groups.append([r])
    return groups


def figure(data, path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    s = data["settings"]
    linthresh = s.get("linthresh", LINTHRESH)
    panels = (("s-generative", "benchmarked s-generative entries: every mode k > 0 decays (C2 holds)"),
              ("failing", ("rejected entries: red = C2 fails (those modes never decay);\n"
                          "unmarked curves pass C2 and are rejected by C1 (negative kernel)")))
    figure, axes = pyplot.subplots(1, 2, figsize=(14, 8.4), sharey=True, squeeze=False)
    plotted = [r for r in data["rows"] if r.get("plotted")]
    top = max(max(max(d) for d in _curves(r)) for r in plotted)
    bottom = min(min(min(d) for d in _curves(r)) for r in plotted)
    k = k_grid(s)
    for axis, (panel, title) in zip(axes[0], panels):
        rows = [r for r in plotted if r["panel"] == panel]
        red_labelled = False
        undamped = []
        for i, group in enumerate(_groups(rows)):
            r = group[0]
            colour = COLOURS[i % len(COLOURS)]
            names = " = ".join(g["label"] for g in group)
            label = names if panel == "s-generative" else f"{names}: {why(r)}"
            slowest = np.asarray(r["slowest"])
            style = {}
            if _is_zero(slowest):  # several undamped entries share the floor: staggered markers tell them apart
                style = {"marker": "os^v"[len(undamped) % 4], "ms": 5, "markevery": (8 * len(undamped), 30)}
                undamped.append(names)
            # solid: the slowest carried mode -lambda*(k), what C2 is about; dashed: every other carrying branch
            axis.plot(k, slowest, color=colour, lw=1.8, label=label, zorder=3, **style)
            for decay in r["other_branches"]:
                axis.plot(k, decay, color=colour, lw=1.1, ls="--", zorder=3)
            fails = np.zeros(len(k), dtype=bool)
            for start, stop in r["c2_fails_runs"]:
                fails[start:stop] = True
            if np.any(fails):
                axis.plot(k, np.where(fails, slowest, np.nan), color="red", lw=8, alpha=0.3, zorder=2,
                          solid_capstyle="butt",
                          label=None if red_labelled else "C2 fails here: lambda*(k) >= lambda*(0), no decay")
                red_labelled = True
        if undamped:
            axis.text(0.98, 0.035, f"-Re lambda = 0 (undamped): {', '.join(undamped)}", transform=axis.transAxes,
                      ha="right", va="bottom", fontsize=8, color="darkred")
        axis.set_xscale("log")
        axis.set_yscale("symlog", linthresh=linthresh, linscale=0.5)
        axis.set_xlim(*s["k_range"])
        low = 2.0 * bottom if bottom < -linthresh else -0.5 * linthresh  # a little room under the floor 0
        axis.set_ylim(low, 3.0 * top)
        first = math.floor(math.log10(linthresh))
        decades = [d for d in range(first, math.ceil(math.log10(3.0 * top)) + 1) if d % 2 == 0]
        axis.yaxis.set_major_locator(FixedLocator([0.0] + [10.0 ** d for d in decades]))
        axis.yaxis.set_minor_locator(NullLocator())
        axis.xaxis.set_minor_locator(NullLocator())
        axis.yaxis.set_major_formatter(FuncFormatter(lambda v, _: "0" if v == 0 else f"{v:g}"))
        axis.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        axis.axvspan(*s["window"], color="0.5", alpha=0.07, zorder=0)
        axis.grid(True, which="major", alpha=0.3)
        axis.set_xlabel("k = |wave vector|   (grey band: the table's window 0.1 <= k <= 10)")
        axis.set_title(title, fontsize=10)
        axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=1, frameon=False)
    axes[0][0].set_ylabel("decay rate -Re lambda(k)  (symlog; 0 = undamped)\n"
                          "solid: slowest carried mode -lambda*(k); dashed: other branch")
    figure.suptitle(f"dispersion relations of the catalog at N = {s['dim']}, default parameters: "
                    "a Fourier mode exp(i k.x + lambda t) decays at rate -Re lambda", fontsize=11)
    figure.tight_layout()
    C.save_figure(figure, path)
    pyplot.close(figure)


def main(argv=None) -> int:
    return C.benchmark_main("dispersion", __doc__, BUDGETS, run, tables, figure, builds=False, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
