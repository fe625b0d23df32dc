"""Verdicts of the catalog as the analysis computes them: the failing processes with their witnesses and checked
repairs, the variance-preserving (OU) diffusion the analysis refuses by design, and every benchmarked entry.

    python bench/verdicts.py --budget tiny     # ~2 min: the failing entries at N = 2, their repairs, VP
    python bench/verdicts.py --budget small    # also N = 1 and every s-generative entry (the README table)

All through ``python -m pde2gen check ... --json`` (fresh processes, the benchmarks' compiler: see _common).
A repair counts as *checked* twice: the analysis reports the repaired PDE's conditions itself, and this script
checks the repaired PDE again as a new input (its text converted to the parser's syntax) and records the exit
code (0 = s-generative).

Writes bench/results/verdicts_<budget>.json and .md.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

# The Ornstein-Uhlenbeck Fokker-Planck equation of VP diffusion (1-D, beta = 1): x-dependent coefficients.
VP_PDE = "diff(u,t) = diff(u,x,2)/2 + x*diff(u,x)/2 + u/2"
BUDGETS = {"tiny": {"dims": (2,), "s_generative": False}, "small": {"dims": (1, 2), "s_generative": True}}


def as_input(display: str) -> str:
    """The analysis' display of a PDE ('u_tt + (c**2)*(-lap) u = 0') in the parser's syntax."""
    text = re.sub(r"\(-lap\)\^\(([^()]+)\) u", r"fraclap(u, \1)", display)
    text = re.sub(r"\(-lap\)\^(\d+) u", r"fraclap(u, \1)", text)
    return text.replace("(-lap) u", "(-lap(u))")


def check(arguments) -> dict:
    wall, done = C.run_cli(["check", *arguments, "--json"], timeout=600)
    if done is None:
        return {"exit": None, "error": "timed out", "wall_s": wall}
    out = {"exit": done.returncode, "wall_s": round(wall, 2)}
    try:
        out["report"] = json.loads(done.stdout)
    except json.JSONDecodeError:
        out["error"] = (done.stderr.strip() or done.stdout.strip()).splitlines()[0:2]
    return out


def summary(report: dict) -> dict:
    conditions = {c["name"]: c for c in report["conditions"]}
    failed = [c for c in report["conditions"] if c["status"] != "PASS"]
    return {"s_generative": report["s_generative"],
            "conditions": {name: c["status"] for name, c in conditions.items()},
            "first_failure": None if not failed else f"{failed[0]['name']}: {failed[0]['reason']}",
            "witness": None if not failed else failed[0].get("witness")}


def run(args):
    budget = BUDGETS[args.budget]
    info = C.machine(1)
    C.log(f"verdicts, budget {args.budget}: {C.machine_line(info)}")
    rows = []
    for entry in C.FAILING:
        for dim in budget["dims"]:
            result = check([entry, "--dim", str(dim)])
            row = {"entry": entry, "dim": dim, "exit": result["exit"], "wall_s": result["wall_s"]}
            if "report" not in result:
                row["error"] = result.get("error")
                rows.append(row)
                continue
            report = result["report"]
            row.update(summary(report))
            parameters = report["spec"].get("parameters") or {}
            row["repairs"] = []
            for repair in report["repairs"]:
                item = {key: repair[key] for key in ("name", "pde", "construction", "dim", "s_generative")}
                item["conditions"] = repair["conditions"]
                text = as_input(repair["pde"])
                extra = [f"--param={k}={v}" for k, v in parameters.items()]
                again = check([text, "--dim", str(repair["dim"]), "--construction", repair["construction"], *extra])
                item["recheck"] = {"input": text, "exit": again["exit"],
                                   "agrees": again["exit"] == (0 if repair["s_generative"] else 1)}
                row["repairs"].append(item)
            rows.append(row)
            C.log(f"{entry} N={dim}: exit {row['exit']}, {row['conditions']}, {len(row['repairs'])} repair(s)")
    vp = check([VP_PDE, "--dim", "1"])
    vp_row = {"pde": VP_PDE, "exit": vp["exit"], "message": vp.get("error")}
    C.log(f"VP (OU Fokker-Planck): exit {vp['exit']}: {vp.get('error')}")
    entries = []
    if budget["s_generative"]:
        for name, label in C.ENTRIES:
            result = check([name, "--dim", "2"])
            item = {"entry": name, "label": label, "exit": result["exit"]}
            if "report" in result:
                item.update(summary(result["report"]))
            else:
                item["error"] = result.get("error")
            entries.append(item)
            C.log(f"{name}: exit {item['exit']}")
    data = {"benchmark": "verdicts", "command": f"python bench/verdicts.py --budget {args.budget}",
            "budget": args.budget, "machine": info, "failing": rows, "vp": vp_row, "entries": entries}
    C.write_json(C.RESULTS / f"verdicts_{args.budget}.json", data)
    return data


def _short(text, limit=150):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def tables(data) -> str:
    out = [f"Command: `{data['command']}` (each line: `python -m pde2gen check ENTRY --dim N --json`)", "",
           f"machine: {C.machine_line(data['machine'])}", ""]
    header = ["entry", "N", "exit", "C0", "C1", "C2", "first failing condition (reason)", "repairs: verdict (re-check exit)"]
    body = []
    for r in data["failing"]:
        if "conditions" not in r:
            body.append([r["entry"], r["dim"], r["exit"], "", "", "", f"error: {r.get('error')}", ""])
            continue
        repairs = "; ".join(
            f"{p['name']} ({p['construction']}): {'s-generative' if p['s_generative'] else 'not s-generative'} "
            f"(re-check exit {p['recheck']['exit']}{'' if p['recheck']['agrees'] else ', DISAGREES'})"
            for p in r["repairs"]) or "none offered"
        c = r["conditions"]
        body.append([r["entry"], r["dim"], r["exit"], c.get("C0"), c.get("C1"), c.get("C2"),
                     _short(r["first_failure"] or "all pass"), repairs])
    out += [("**Failing processes**: verdicts, the first failing condition and the repairs the analysis proposes "
            "(each repair's verdict is computed by the analysis; 're-check' runs `pde2gen check` on the repaired "
            "PDE again)"), "", C.markdown_table(header, body), ""]
    vp = data["vp"]
    out += [(f"**Variance-preserving diffusion** (the Ornstein-Uhlenbeck Fokker-Planck equation, "
            f"`pde2gen check \"{vp['pde']}\" --dim 1`): exit {vp['exit']}, "
            f"`{' / '.join(vp['message'] or [])}`. The analysis takes constant coefficients only, by design; VP "
            "is VE diffusion in rescaled coordinates (x / s(t), sigma / s(t)), so the VE entry covers it."), ""]
    if data["entries"]:
        header = ["entry", "exit", "C0", "C1", "C2", "verdict"]
        body = [[e["label"], e["exit"], *(e.get("conditions", {}).get(k, "") for k in ("C0", "C1", "C2")),
                 "s-generative" if e.get("s_generative") else _short(e.get("first_failure") or e.get("error"))]
                for e in data["entries"]]
        out += ["**Benchmarked entries** at N = 2", "", C.markdown_table(header, body), ""]
    return "\n".join(out)


def main(argv=None) -> int:
    return C.benchmark_main("verdicts", __doc__, BUDGETS, run, tables, builds=False, argv=argv)


if __name__ == "__main__":
    sys.exit(main())
