"""Write the README's results section from the benchmark results in bench/results/ (nothing is measured here).

    python bench/report.py --budget small          # README.md, between <!-- results:start --> and <!-- results:end -->
    python bench/report.py --budget tiny --print   # print the section instead of writing it

Every table is rebuilt from bench/results/<benchmark>_<budget>.json by the table functions of the benchmark
scripts; the prose reading is bench/reading.md (written by hand from those tables). Only the text between the
two markers is replaced (the markers are appended at the end of README.md when missing).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

START, END = "<!-- results:start -->", "<!-- results:end -->"
README = C.ROOT / "README.md"
READING = C.BENCH / "reading.md"


def load(name: str, budget: str):
    path = C.RESULTS / f"{name}_{budget}.json"
    return json.loads(path.read_text()) if path.exists() else None


def image(name: str) -> str:
    return f"![{name}](bench/results/{name})"


def quality_section(data, budget) -> list[str]:
    import quality as Q

    s = data["settings"]
    order = Q.method_order(data)
    out = [(f"Command: `{data['command']}` — full tables (Euler, every NFE, MMD, the same networks integrated in t, "
           f"wall times): [bench/results/quality_{budget}.md](bench/results/quality_{budget}.md)"), "",
           *Q.run_header(data)]
    out += Q.relative_table(data)
    top = max(s["nfes"])
    header = ["model"] + [f"{d} ({'FD' if d == 'digits' else 'SW'})" for d in s["datasets"]]
    body = []
    for suffix in ("", Q.TIME_SUFFIX):
        for name in order:
            if suffix and name in ("fm", "edm"):
                continue
            cells = [Q.label_of(name) + (" [in t]" if suffix else "")]
            for dataset in s["datasets"]:
                metric = "fd" if dataset == "digits" else "sw"
                mean, std, count = Q.summarise(data["rows"], metric, dataset, name, "heun" + suffix, top)
                cells.append(C.fmt(mean, std) if count else "n/a")
            body.append(cells)
    floors = ["data (floor)"] + [C.fmt(*C.mean_std([f.get("fd" if d == "digits" else "sw")
                                                    for f in data["floors"].get(d, [])])) for d in s["datasets"]]
    body.append(floors)
    out += [(f"**Heun, NFE {top}**: sliced Wasserstein-1 (2-D) / classifier Frechet distance (digits) to held-out "
            "data, mean ± std over seeds; generated models integrated in sigma as their sample.py does; '[in t]': the "
            "same trained network integrated in the PDE time t (`sample.py --variable t`)"), "",
            C.markdown_table(header, body), ""]
    if "digits" in s["datasets"]:
        header = ["model", f"label entropy, Heun {top} (ln 10 = 2.303)", f"conditional entropy, Heun {top}"]
        body = []
        for name in order:
            cells = [Q.label_of(name)]
            for m in ("label_entropy", "conditional_entropy"):
                mean, std, count = Q.summarise(data["rows"], m, "digits", name, "heun", top)
                cells.append(C.fmt(mean, std) if count else "n/a")
            body.append(cells)
        fl = data["floors"].get("digits", [])
        body.append(["data (floor)"] + [C.fmt(*C.mean_std([f[m] for f in fl]))
                                        for m in ("label_entropy", "conditional_entropy")])
        out += [("**Digits, classifier label entropy** (diversity of predicted classes; conditional entropy: how "
                "undecided the classifier is per sample)"), "", C.markdown_table(header, body), ""]
    for suffix in ("nfe", "samples", "digits"):
        name = f"quality_{budget}_{suffix}.png"
        if (C.RESULTS / name).exists():
            out += [image(name), ""]
    return out


def strip_header(text: str) -> list[str]:
    """A benchmark's markdown tables without their first lines (command and machine, shown once above)."""
    lines = text.splitlines()
    while lines and (lines[0].startswith("Command:") or lines[0].startswith("machine:")
                     or lines[0].startswith("budget:") or not lines[0].strip()):
        lines.pop(0)
    return lines


def section(budget: str) -> str:
    import cost
    import dispersion
    import exact
    import kac
    import paths
    import robustness
    import samplers
    import verdicts

    results = {name: load(name, budget) for name in
               ("dispersion", "verdicts", "quality", "robustness", "paths", "kac", "samplers", "exact", "cost")}
    present = {k: v for k, v in results.items() if v}
    if not present:
        raise SystemExit(f"no results for budget {budget!r} in {C.RESULTS}")
    # The machine line of the longest benchmark (quality) when present: it carries most of the numbers.
    info = (results["quality"] or next(iter(present.values())))["machine"]
    out = [START, "", f"## Results: the catalog reproduced and measured (budget `{budget}`)", "",
           (f"Written by `python bench/report.py --budget {budget}` from bench/results/*_{budget}.json; every "
           "number below was measured by the command printed above its table. "
           f"Machine: {C.machine_line(info)}. Wall times on 2 CPU cores are noisy; ratios measured within "
           "one run are the robust figures."), "",
           ("Reproduce everything (one command per benchmark, run one at a time; `--budget tiny` is a "
           "2-4 minute smoke version of each, `full` the long one). The `small` budget takes about 90 minutes "
           "on 2 CPU cores, most of it in quality.py; trained models are cached, so robustness.py and kac.py "
           "mostly reuse quality's:"), "", "```bash",
           "python bench/digits_classifier.py               # once: bench/digits_classifier.pt (8x8 digits features)",
           f"python bench/dispersion.py --budget {budget}      # seconds: the dispersion figure, no training",
           f"python bench/verdicts.py   --budget {budget}",
           f"python bench/quality.py    --budget {budget}",
           f"python bench/robustness.py --budget {budget}      # reuses quality's trained models (cache)",
           f"python bench/kac.py        --budget {budget}      # idem",
           f"python bench/paths.py      --budget {budget}      # Kac and heat on the linear path (toys)",
           "python bench/paths.py      --budget digits      # the same on digits",
           f"python bench/samplers.py   --budget {budget}      # ODE against the stochastic sampler",
           f"python bench/exact.py      --budget {budget}",
           f"python bench/cost.py       --budget {budget}",
           f"python bench/report.py     --budget {budget}      # this section",
           f"bash bench/run_all.sh {budget}                    # all of the above, one compiler commit", "```", ""]
    commits = sorted({str(r["machine"].get("compiler", "unknown")) for r in present.values()})
    out += [(f"Catalog entries are built by `python -m pde2gen build NAME` from a snapshot of commit(s) "
            f"{', '.join(str(c) for c in commits)} (bench/_common.py), never from half-edited files."), ""]
    if READING.exists():
        out += ["### Reading", "", READING.read_text().strip(), ""]
    if results["dispersion"]:
        d = results["dispersion"]
        out += ["### Dispersion relations: which Fourier modes each PDE forgets (C2)", "",
                f"Command: `{d['command']}`", "", image(f"dispersion_{budget}.png"), "",
                *strip_header(dispersion.tables(d)), ""]
    if results["verdicts"]:
        out += ["### Verdicts: what the analysis accepts and refuses", "",
                f"Command: `{results['verdicts']['command']}`", "",
                *strip_header(verdicts.tables(results["verdicts"])), ""]
    if results["quality"]:
        out += ["### Quality at equal cost", "", *quality_section(results["quality"], budget)]
    if results["robustness"]:
        r = results["robustness"]
        out += ["### Robustness: the PFGM++ claim (smaller D degrades more slowly)", "",
                (f"Command: `{r['command']}`; reference sampler Heun NFE 20 in sigma; settings "
                f"{ {k: v for k, v in r['settings'].items() if k != 'datasets'} }"), "",
                *strip_header(robustness.tables(r)), ""]
        if (C.RESULTS / f"robustness_{budget}.png").exists():
            out += [image(f"robustness_{budget}.png"), ""]
    if results["paths"]:
        pa = results["paths"]
        out += ["### Probability paths: the Kac flow as published (linear path) and flow matching", "",
                f"Command: `{pa['command']}`", "", *strip_header(paths.tables(pa)), ""]
        digits = load("paths", "digits")
        if digits:
            out += [f"Digits: `{digits['command']}`", "", *strip_header(paths.tables(digits)), ""]
    if results["samplers"]:
        sa = results["samplers"]
        out += ["### Samplers: the ODE against the stochastic sampler with the kernel's own noise", "",
                f"Command: `{sa['command']}`", "", *strip_header(samplers.tables(sa)), ""]
    if results["kac"]:
        k = results["kac"]
        out += ["### Kac flows: the velocity bound and few steps", "", f"Command: `{k['command']}`", "",
                *strip_header(kac.tables(k)), ""]
        if (C.RESULTS / f"kac_{budget}.png").exists():
            out += [image(f"kac_{budget}.png"), ""]
    if results["exact"]:
        e = results["exact"]
        out += ["### Exact flows: integration error alone (no network)", "", f"Command: `{e['command']}`", "",
                *strip_header(exact.tables(e)), ""]
        if (C.RESULTS / f"exact_{budget}.png").exists():
            out += [image(f"exact_{budget}.png"), ""]
    if results["cost"]:
        c = results["cost"]
        out += ["### Cost", "", f"Command: `{c['command']}`", "", *strip_header(cost.tables(c)), ""]
    missing = [k for k, v in results.items() if not v]
    if missing:
        out += [f"Not run for this budget: {', '.join(missing)}.", ""]
    out += [END]
    return "\n".join(out)


def write_readme(text: str) -> None:
    readme = README.read_text()
    if START in readme and END in readme:
        before = readme[: readme.index(START)]
        after = readme[readme.index(END) + len(END):]
        new = before + text + after
    else:
        new = readme.rstrip("\n") + "\n\n" + text + "\n"
    tmp = README.with_name(README.name + ".tmp")
    tmp.write_text(new)
    os.replace(tmp, README)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", default="small")
    parser.add_argument("--print", action="store_true", help="print instead of writing README.md")
    args = parser.parse_args(argv)
    text = section(args.budget)
    if args.print:
        print(text)
    else:
        write_readme(text)
        print(f"README.md: results section rewritten from bench/results/*_{args.budget}.json "
              f"({len(text.splitlines())} lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
