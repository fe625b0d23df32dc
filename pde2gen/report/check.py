"""Human-readable reports of the analysis (``pde2gen check`` / ``catalog``), built from ``AnalysisReport.to_dict()``
so that the text and the JSON views can never disagree."""
from __future__ import annotations

import textwrap

WIDTH = 110
LABEL = 11  # width of the left column


def _wrap(label: str, text: str, *, limit: int | None = 4) -> list[str]:
    """``label`` then ``text`` wrapped into the right column; at most ``limit`` lines (None: all)."""
    lines = textwrap.wrap(" ".join(str(text).split()), WIDTH - LABEL - 1) or [""]
    if limit is not None and len(lines) > limit:
        lines = lines[:limit]
        lines[-1] = lines[-1][: WIDTH - LABEL - 5] + " ..."
    first, *rest = lines
    return [f"{label:<{LABEL}}{first}"] + [" " * LABEL + line for line in rest]


def _witness_text(witness: dict | None) -> str:
    if not witness:
        return ""
    parts = []
    for key, value in witness.items():
        if isinstance(value, float):
            parts.append(f"{key}={value:.6g}")
        elif isinstance(value, (int, str)) and len(str(value)) < 40:
            parts.append(f"{key}={value}")
    return "witness: " + ", ".join(parts) if parts else ""


def _verdict_text(data: dict) -> str:
    spec = data["spec"]
    where = f"N = {spec['dim']}, {spec['construction']}"
    if data["s_generative"]:
        return f"s-generative ({where})"
    failed = [c["name"] for c in data["conditions"] if c["status"] == "FAIL"]
    undecided = [c["name"] for c in data["conditions"] if c["status"] == "UNDECIDED"]
    why = []
    if failed:
        why.append(", ".join(failed) + " fail" + ("s" if len(failed) == 1 else ""))
    if undecided:
        why.append(", ".join(undecided) + " undecided")
    return f"NOT s-generative ({where}): " + "; ".join(why)


def format_check(report, *, verbose: bool = False, timings: dict | None = None) -> str:
    """The ``pde2gen check`` report: one screen by default, every stage's intermediate result with --verbose."""
    data = report.to_dict()
    spec, disp = data["spec"], data["dispersion"]
    out = [f"pde2gen check: {spec['source'] or spec['pde']}"]
    params = ", ".join(f"{k} = {v}" for k, v in spec["parameters"].items() if v is not None)
    free = [k for k, v in spec["parameters"].items() if v is None]
    out += _wrap("PDE", spec["pde"] + (f"    ({params})" if params else "") +
                 (f"    (symbolic: {', '.join(free)})" if free else ""))
    if disp is not None:
        out += _wrap("symbol", f"P(lambda, s) = {disp['symbol']}    (lambda = -i omega, s = k^2)")
        if disp["branches"]:
            carrying = disp.get("carrying") or [True] * len(disp["branches"])
            branches = "; ".join(f"{b}{'' if c else ' (carries no density)'}"
                                 for b, c in zip(disp["branches"], carrying))
            out += _wrap("branches", branches, limit=2)
        out += _wrap("problem", f"{disp['problem_type']}: {disp['problem_type_reason']}", limit=2)
    split = data["density_split"]
    if split is not None:
        out += _wrap("density", f"p = {split['p']};  J = {split['J']};  R = {split['R']} ({split['reaction_kind']})",
                     limit=2)
    for c in data["conditions"]:
        text = c["reason"]
        witness = _witness_text(c["witness"])
        if witness and c["status"] != "PASS":
            text += f"  [{witness}]"
        if c["method"]:
            text += f"  (method: {c['method']})"
        out += _wrap(f"{c['name']} {c['status']}", text, limit=None if verbose else 3)
    out += _wrap("prior", data["prior"]["description"], limit=2)
    for eq in data["equivalences"]:
        out += _wrap("same as", eq, limit=2)
    for r in data["repairs"]:
        status = "s-generative" if r["s_generative"] else "still not s-generative"
        conds = ", ".join(f"{k} {v}" for k, v in r["conditions"].items())
        out += _wrap("repair", f"{r['name']} -> {status} ({conds}): {r['pde']}", limit=2)
    for w in data["warnings"]:
        out += _wrap("warning", w, limit=2)
    out += _wrap("verdict", _verdict_text(data))
    if verbose:
        out.append("")
        out.append("intermediate results:")
        if disp is not None:
            for key in ("density_factor", "reaction", "amplitudes", "p_hat", "mass", "ghat", "semigroup_exponent",
                        "augmented_dims"):
                if disp.get(key) not in (None, "", []):
                    out += _wrap(f"  {key}"[:LABEL - 1], f"{key}: {disp[key]}", limit=None)
        stage_times = dict(data.get("timings_s", {}))
        stage_times.update({k: round(v, 4) for k, v in (timings or {}).items()})
        if stage_times:
            out += _wrap("timings", ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in stage_times.items()), limit=None)
    return "\n".join(out)


def format_verdict_line(label: str, report) -> str:
    """One line: label, the three condition statuses and the verdict."""
    conds = " ".join(f"{c.name} {c.status:<9}" for c in report.conditions)
    verdict = "s-generative" if report.s_generative else "not s-generative"
    return f"{label:<34} {conds} {verdict}"


def format_catalog_line(name: str, entry, report, error: str | None) -> str:
    if error:
        return f"{name:<18} {error}"
    if report is None:
        return f"{name:<18} (term to compose with an equation, e.g. wave+{name}): {entry.title}"
    conds = " ".join(f"{c.name} {c.status:<9}" for c in report.conditions)
    verdict = "s-generative" if report.s_generative else "not s-generative"
    return f"{name:<18} {conds} {verdict:<17} {entry.title}"
