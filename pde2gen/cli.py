"""Command-line interface: ``pde2gen check | catalog | build | show | demo``.

Exit codes: 0 s-generative / success, 1 not s-generative (or build refused), 2 bad input, 3 analysis error,
4 derivation error, 5 render error, 70 internal error (a bug). Errors are one line (``error[stage]: ...``) plus an optional ``hint:`` line;
``--traceback`` shows the Python traceback instead.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from .errors import Pde2genError, UsageError

EXIT_OK, EXIT_NOT_GENERATIVE, EXIT_INTERNAL = 0, 1, 70


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, exit 2) instead of printing usage and exiting itself."""

    def error(self, message):
        raise UsageError(message, hint=f"see '{self.prog} --help'")


def _parse_params(items: list[str] | None) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UsageError(f"--param expects name=value, got {item!r}", hint="e.g. --param a=9 --param c=3")
        params[name.strip()] = value.strip()
    return params


def _add_pde_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("expr", help='the PDE: catalog terms ("wave+damping"), SymPy syntax or u_t shorthand')
    p.add_argument("--dim", type=int, default=2, help="data dimension N (default 2)")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="set a parameter (repeatable)")
    p.add_argument("--construction", choices=("isotropic", "product"), default=None,
                   help="isotropic (default, or the catalog entry's) or product of 1-D processes")
    p.add_argument("--problem-type", choices=("evolution", "augmented"), default=None,
                   help="override the problem type chosen by the analysis")


def _spec_from_args(args):
    from .parse import parse

    return parse(args.expr, params=_parse_params(args.param), dim=args.dim, construction=args.construction,
                 problem_type=args.problem_type)


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="pde2gen", description="A compiler from linear PDEs to generative models.")
    parser.add_argument("--traceback", action="store_true", help="show Python tracebacks on errors")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_ArgumentParser)

    check = sub.add_parser("check", help="is this PDE s-generative? conditions, witnesses, repairs")
    _add_pde_arguments(check)
    check.add_argument("--json", action="store_true", help="machine-readable report")
    check.add_argument("--verbose", "-v", action="store_true", help="every stage's intermediate result and time")

    cat = sub.add_parser("catalog", help="every catalog entry with its computed verdicts")
    cat.add_argument("--dim", type=int, default=2)
    cat.add_argument("--json", action="store_true")

    show = sub.add_parser("show", help="inspect one compiler stage's result")
    _add_pde_arguments(show)
    show.add_argument("--stage", choices=("parse", "analysis", "derive", "ir", "source"), default="analysis")

    build = sub.add_parser("build", help="render a standalone PyTorch module for an s-generative PDE")
    _add_pde_arguments(build)
    build.add_argument("-o", "--out", required=True, help="output directory")
    build.add_argument("--force", action="store_true", help="replace a non-empty output directory")
    build.add_argument("--force-unsafe", action="store_true", help="build even if the PDE is not s-generative")
    build.add_argument("--path", choices=("ve", "linear"), default=None,
                       help="probability path: ve, x_t = y + K_t (the default), or linear, x_t = (1 - t/T) y + K_g(t) "
                            "with a data-free prior K_g(T) (Kac flows, flow matching)")
    build.add_argument("--path-schedule", choices=("identity", "quadratic", "scale-linear"), default=None,
                       help="linear path's clock g: identity g = t (Kac default), quadratic g = T (t/T)^2, "
                            "scale-linear: the kernel's scale grows linearly to sigma_T (other families' default)")
    build.add_argument("--path-horizon", type=float, default=None, metavar="T", help="linear path's T (default 1)")
    build.add_argument("--path-scale", type=float, default=None, metavar="SIGMA_T",
                       help="scale-linear clock's sigma_T (default: the data's sigma_data, read by train.py)")

    plot = sub.add_parser("plot", help="PNGs of the physics: dispersion branches, kernel, velocity field, prior")
    _add_pde_arguments(plot)
    plot.add_argument("-o", "--out", required=True, help="output directory for the PNGs")

    explain = sub.add_parser("explain", help="the derivation step by step, as a markdown or LaTeX document")
    _add_pde_arguments(explain)
    explain.add_argument("--format", choices=("md", "tex"), default="md", help="markdown (default) or LaTeX")
    explain.add_argument("-o", "--out", default=None, help="write the document to this file (default: stdout)")

    demo = sub.add_parser("demo", help="the main job: check, build, train and sample two models on a 2-D toy")
    demo.add_argument("--out", default="runs/demo", help="where builds, runs, plots and the table go")
    demo.add_argument("--steps", type=int, default=1500, help="training steps per model")
    demo.add_argument("--data", default="checkerboard", help="toy data set (moons, 8gaussians, ...)")
    return parser


# ----------------------------------------------------------------------------------------------- commands
def _cmd_check(args) -> int:
    from .analyse import analyse
    from .report import format_check

    timings = {}
    start = time.perf_counter()
    spec = _spec_from_args(args)
    timings["parse"] = time.perf_counter() - start
    start = time.perf_counter()
    report = analyse(spec)
    timings["analyse"] = time.perf_counter() - start
    if args.json:
        data = report.to_dict()
        data["timings_s"] = {k: round(v, 4) for k, v in timings.items()}
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(format_check(report, verbose=args.verbose, timings=timings))
    return EXIT_OK if report.s_generative else EXIT_NOT_GENERATIVE


def _cmd_catalog(args) -> int:
    from .analyse import analyse
    from .catalog import load_catalog
    from .parse import parse
    from .report import format_catalog_line

    rows = []
    for name, entry in sorted(load_catalog().items()):
        if entry.kind != "equation":
            rows.append((name, entry, None, None))
            continue
        try:
            report = analyse(parse(name, dim=args.dim), repairs=False)
            rows.append((name, entry, report, None))
        except Pde2genError as exc:
            rows.append((name, entry, None, exc.one_line()))
    if args.json:
        out = []
        for name, entry, report, error in rows:
            item = {"name": name, "kind": entry.kind, "title": entry.title}
            if report is not None:
                item["s_generative"] = report.s_generative
                item["conditions"] = {c.name: c.status for c in report.conditions}
            if error:
                item["error"] = error
            out.append(item)
        print(json.dumps(out, indent=2))
    else:
        print(f"pde2gen catalog (data dimension N = {args.dim}); verdicts computed now, not stored")
        for name, entry, report, error in rows:
            print(format_catalog_line(name, entry, report, error))
    return EXIT_OK


def _cmd_show(args) -> int:
    from .stages import show_stage

    print(show_stage(args.expr, args.stage, dim=args.dim, params=_parse_params(args.param),
                     construction=args.construction, problem_type=args.problem_type))
    return EXIT_OK


def _cmd_build(args) -> int:
    from .build import BuildRefused, build

    try:
        result = build(args.expr, args.out, dim=args.dim, params=_parse_params(args.param),
                       construction=args.construction, problem_type=args.problem_type, force=args.force,
                       force_unsafe=args.force_unsafe, path=args.path, path_schedule=args.path_schedule,
                       path_horizon=args.path_horizon, path_scale=args.path_scale)
    except BuildRefused as refusal:
        print(refusal.report_text)
        print(refusal.one_line(), file=sys.stderr)
        return EXIT_NOT_GENERATIVE
    print(result.summary())
    return EXIT_OK


def _cmd_plot(args) -> int:
    from pathlib import Path

    from .analyse import analyse
    from .explain import derive_for_report
    from .plots import write_plots

    try:  # fail fast, before the expensive stages
        Path(args.out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write the plots to {args.out!r}: {exc.strerror or exc}") from None
    spec = _spec_from_args(args)
    analysis = analyse(spec, repairs=False)  # the plots show this PDE only, not its repairs
    derivation, derivation_error = derive_for_report(spec, analysis)
    if derivation_error:
        print(f"note: no derived kernel ({derivation_error})")
    for outcome in write_plots(analysis, derivation, args.out):
        print(outcome.line())
    return EXIT_OK


def _cmd_explain(args) -> int:
    from .analyse import analyse
    from .explain import derive_for_report, explain_latex, explain_markdown

    spec = _spec_from_args(args)
    analysis = analyse(spec)
    derivation, derivation_error = derive_for_report(spec, analysis)
    render = explain_latex if args.format == "tex" else explain_markdown
    text = render(spec, analysis, derivation, derivation_error=derivation_error)
    if args.out is None:
        print(text)
        return EXIT_OK
    try:
        with open(args.out, "w", encoding="utf-8") as handle:
            handle.write(text)
    except OSError as exc:
        raise UsageError(f"cannot write {args.out!r}: {exc.strerror or exc}") from None
    print(f"wrote {args.out}")
    return EXIT_OK


def _cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo(out=args.out, steps=args.steps, data=args.data)


COMMANDS = {"check": _cmd_check, "catalog": _cmd_catalog, "show": _cmd_show, "build": _cmd_build,
            "plot": _cmd_plot, "explain": _cmd_explain, "demo": _cmd_demo}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    traceback_wanted = "--traceback" in argv
    try:
        args = build_parser().parse_args(argv)
        if args.version:
            from . import __version__

            print(f"pde2gen {__version__}")
            return EXIT_OK
        if args.command is None:
            raise UsageError("no command given", hint="pde2gen check|catalog|build|show|demo --help")
        if hasattr(args, "dim") and not (1 <= args.dim <= 65536):
            raise UsageError(f"--dim must be between 1 and 65536, got {args.dim}")
        return COMMANDS[args.command](args)
    except Pde2genError as exc:
        if traceback_wanted:
            raise
        print(exc.one_line(), file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:  # output piped into e.g. `head`: not an error
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print("error[pde2gen]: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug in pde2gen, not the user's input: still one line, distinct code
        if traceback_wanted:
            raise
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        print(f"error[internal]: {message}", file=sys.stderr)
        print("hint: this is a pde2gen bug; rerun with --traceback and report it", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
