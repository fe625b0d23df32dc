"""The one driver of the compiler's stages: every stage timed, every result kept, the same names everywhere.

    parse    : text | SymPy | catalog terms -> PDESpec          (pde2gen.spec.parse)
    analyse  : PDESpec -> AnalysisReport                      (pde2gen.analysis.analyse, on pde2gen.analysis.dispersion)
    derive   : (PDESpec, AnalysisReport) -> Derivation        (pde2gen.derive.derive)
    lower    : Derivation -> ModuleIR (plain data)            (pde2gen.codegen.lower)
    render   : ModuleIR -> {file name: text}                  (pde2gen.codegen.render)

``compile_pde`` runs them up to a named stage and keeps every intermediate result (as Devito's IRs do), so
``pde2gen show EXPR --stage parse|analyse|derive|lower|render`` can print any of them (the same names here, in
the CLI and in docs/DESIGN.md). ``pde2gen build`` (pde2gen.build) and ``pde2gen check`` run through it; it is
the one place that times the stages. A numerical failure inside a stage is that stage's error class.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from .errors import AnalysisError, DerivationError, numeric_failures_as

logger = logging.getLogger("pde2gen")

STAGES = ("parse", "analyse", "derive", "lower", "render")


@dataclass(frozen=True)
class CompileResult:
    spec: Any
    analysis: Any = None
    derivation: Any = None
    ir: Any = None
    files: dict[str, str] | None = None
    timings: dict[str, float] = field(default_factory=dict)


def compile_pde(source, *, until: str = "render", dim: int = 2, params=None, construction=None,
                problem_type=None, repairs: bool = True, options=None, path=None, shape=None,
                after_analyse=None) -> CompileResult:
    """Run the pipeline on ``source`` up to and including stage ``until``.

    ``path``: the probability path, a dict of pde2gen.codegen.lower.resolve_path's arguments (path "ve" | "linear",
    schedule, horizon, sigma_end), e.g. {"path": "linear"}; default the ve path. ``shape``: one sample's shape
    (default (dim,)). ``after_analyse(analysis)``, if given, runs between analyse and derive and may raise
    (pde2gen.build refuses a PDE that is not s-generative there)."""
    if until not in STAGES:
        raise ValueError(f"unknown stage {until!r}; stages: {', '.join(STAGES)}")
    from .spec.parse import parse

    timings: dict[str, float] = {}

    def timed(name, fn, *args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        timings[name] = time.perf_counter() - start
        logger.info("stage %s: %.3f s", name, timings[name])
        return out

    spec = timed("parse", parse, source, params=params, dim=dim, construction=construction,
                 problem_type=problem_type)
    if until == "parse":
        return CompileResult(spec, timings=timings)
    from .analysis.analyse import analyse

    with numeric_failures_as(AnalysisError, "the analysis"):
        analysis = timed("analyse", analyse, spec, repairs=repairs)
    if until == "analyse":
        return CompileResult(spec, analysis, timings=timings)
    if after_analyse is not None:
        after_analyse(analysis)
    from .derive.derive import derive

    with numeric_failures_as(DerivationError, "the derivation"):
        derivation = timed("derive", derive, spec, analysis)
        if until == "derive":
            return CompileResult(spec, analysis, derivation, timings=timings)
        from .codegen.lower import lower
        from .report.explain import (
            model_card_sections,  # the report writer: the driver's business, not a stage's
        )

        def lower_with_card(spec, analysis, derivation):
            explanation = model_card_sections(spec, analysis, derivation)
            return lower(spec, analysis, derivation, options=options, shape=shape, path=path, explanation=explanation)

        ir = timed("lower", lower_with_card, spec, analysis, derivation)
    if until == "lower":
        return CompileResult(spec, analysis, derivation, ir, timings=timings)
    from .codegen.render import render

    files = timed("render", render, ir)
    return CompileResult(spec, analysis, derivation, ir, files, timings=timings)


def show_stage(spec_source, stage: str, **kwargs) -> str:
    """Printable result of one stage: JSON for data, the generated process.py for ``render``."""
    result = compile_pde(spec_source, until=stage, **kwargs)
    if stage == "parse":
        return json.dumps(spec_to_dict(result.spec), indent=2)
    if stage == "analyse":
        return json.dumps(result.analysis.to_dict(), indent=2, sort_keys=True)
    if stage == "derive":
        return json.dumps(result.derivation.to_dict(), indent=2, sort_keys=True)
    if stage == "lower":
        from dataclasses import asdict

        return json.dumps(asdict(result.ir), indent=2, sort_keys=True, default=list)
    return result.files["process.py"]


def spec_to_dict(spec) -> dict:
    """The parsed PDE as plain data."""
    return {
        "pde": spec.pretty(),
        "symbol": str(spec.symbol()),
        "terms": [
            {"coefficient": str(t.coefficient), "t_order": t.t_order, "space_power": str(t.space_power),
             "t_power": t.t_power,
             **({} if t.screening_mass is None else {"screening_mass": str(t.screening_mass)})}
            for t in spec.terms
        ],
        "parameters": {p.name: (None if p.value is None else str(p.value)) for p in spec.parameters},
        "dim": spec.dim,
        "construction": spec.construction,
        "problem_type": spec.problem_type,
        "catalog": list(spec.catalog),
        "notes": list(spec.notes),
    }
