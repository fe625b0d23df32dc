"""Command-line interface: ``pde2gen check | catalog | build | show | demo``.

Exit codes: 0 s-generative / success, 1 not s-generative (or build refused), 2 bad input (including an output
path that cannot be written, ``error[output]``), 3 analysis error, 4 derivation error, 5 render error, 70 internal
error (a bug). An error is exactly one line on stderr (``error[stage]: ... (hint: ...)``); with ``--json`` it is
also printed to stdout as ``{"error": ..., "exit_code": ...}``. ``--traceback`` shows the Python traceback
instead. Numerical warnings (numpy's RuntimeWarning) are not shown: the results say what failed.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings

from .errors import AnalysisError, DerivationError, Pde2genError, UsageError, numeric_failures_as
from .pipeline import STAGES, compile_pde

EXIT_OK, EXIT_NOT_GENERATIVE, EXIT_INTERNAL = 0, 1, 70


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Examples in the epilog kept as written; every option's default shown (when it has one)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that raises UsageError (one line, exit 2) instead of printing usage and exiting itself."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):
        raise UsageError(message, hint=f"see '{self.prog} --help'")


SYNTAX_HELP = """\
PDE syntax (one equation in the unknown u(t, x); x stands for all N space dimensions):
  u_t, u_tt, u_xx, u_txx   subscript shorthand: u_xx is the Laplacian, u_xxxx its square (time order <= 6)
  diff(u, t, 2)            derivatives, also diff(u, x, 2) and Derivative(u, t)
  lap(u), laplacian(u)     the Laplacian; lap(u, 2) its square (power <= 16)
  fraclap(u, p)            (-lap)^p u for a rational p >= 0 with denominator <= 32, e.g. fraclap(u, 3/4)
  (-lap)^(3/4) u           the same, as `check` prints it (also (-lap) u, (-lap)^2 u)
  relap(u, m)              (sqrt(-lap + m^2) - m) u, m >= 0 a number: on u, in first-order PDEs (u_t = -relap(u, 1))
  a, c, kappa, alpha_1     any other name is a positive parameter (at most 16); set it with --param a=9
  + - * / ** ( ) = I pi E sqrt(...)    exact numbers (0.1 is 1/10), at most 12 digits, |x| in [1e-12, 1e12] or 0
  catalog terms            wave+damping, kac, pfgm (see `pde2gen catalog`)"""

_EXAMPLES = {
    "check": """examples:
  pde2gen check "wave+damping" --dim 1
  pde2gen check "u_tt + 2*a*u_t = c**2*lap(u)" --param a=9 --param c=3 --construction product
  pde2gen check "u_t = -fraclap(u, 3/4)" --json
  pde2gen check "u_t + (-lap)^(3/4) u = 0"

""" + SYNTAX_HELP,
    "catalog": """examples:
  pde2gen catalog
  pde2gen catalog --dim 3072 --json""",
    "show": """examples:
  pde2gen show kac --stage derive
  pde2gen show "u_t = lap(u)" --stage parse

""" + SYNTAX_HELP,
    "build": """examples:
  pde2gen build kac -o out/kac
  pde2gen build "u_t = kappa*lap(u)" --param kappa=2 -o out/heat
  pde2gen build kac -o out/kac --force     # rebuild: training runs and your files in out/kac are kept

""" + SYNTAX_HELP,
    "plot": """examples:
  pde2gen plot hyperdiffusion -o plots/
  pde2gen plot pfgm -o plots/pfgm""",
    "explain": """examples:
  pde2gen explain kac --format md -o kac.md
  pde2gen explain "u_t = -fraclap(u, 3/4)" --format tex -o fractional.tex""",
    "demo": """examples:
  pde2gen demo
  pde2gen demo --data moons --steps 500 --out runs/moons""",
}


def _parse_params(items: list[str] | None) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UsageError(f"--param expects name=value, got {item!r}", hint="e.g. --param a=9 --param c=3")
        params[name.strip()] = value.strip()
    return params


def _add_pde_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("expr", help='the PDE: catalog terms ("wave+damping"), SymPy syntax or u_t shorthand '
                                '(syntax below)')
    p.add_argument("--dim", type=int, default=2, help="data dimension N")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="set a parameter (repeatable)")
    p.add_argument("--construction", choices=("isotropic", "product"), default=None,
                   help="isotropic (default, or the catalog entry's) or product of 1-D processes")
    p.add_argument("--problem-type", choices=("evolution", "augmented"), default=None,
                   help="override the problem type chosen by the analysis")


def _pde_arguments(args) -> dict:
    """The parse arguments of a command, for pde2gen.pipeline.compile_pde."""
    return {"params": _parse_params(args.param), "dim": args.dim, "construction": args.construction,
            "problem_type": args.problem_type}


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(prog="pde2gen", description="A compiler from linear PDEs to generative models.")
    parser.add_argument("--traceback", action="store_true", help="show Python tracebacks on errors")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_ArgumentParser)
    _add_parser = sub.add_parser

    def add_parser(name, **kwargs):
        return _add_parser(name, epilog=_EXAMPLES[name], description=kwargs.get("help"), **kwargs)

    sub.add_parser = add_parser

    check = sub.add_parser("check", help="is this PDE s-generative? conditions, witnesses, repairs")
    _add_pde_arguments(check)
    check.add_argument("--json", action="store_true", help="machine-readable report")
    check.add_argument("--verbose", "-v", action="store_true", help="every stage's intermediate result and time")

    cat = sub.add_parser("catalog", help="every catalog entry with its computed verdicts")
    cat.add_argument("--dim", type=int, default=2, help="data dimension N")
    cat.add_argument("--json", action="store_true", help="machine-readable list")

    show = sub.add_parser("show", help="inspect one compiler stage's result")
    _add_pde_arguments(show)
    show.add_argument("--stage", choices=STAGES, default="analyse",
                      help="the stage whose result to print (render: the generated process.py)")

    build = sub.add_parser("build", help="render a standalone PyTorch module for an s-generative PDE")
    _add_pde_arguments(build)
    build.add_argument("-o", "--out", required=True, help="output directory")
    build.add_argument("--force", action="store_true", help="replace a previous build's files; whatever else is in OUT (training runs, your files) is kept")
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
    demo.add_argument("--data", default="checkerboard",
                      help="toy data set (checkerboard, moons, 8gaussians, ...) or a .npy file of 2-D points "
                           "(a quarter of them is held out)")
    return parser


# ----------------------------------------------------------------------------------------------- commands
def _cmd_check(args) -> int:
    from .report.check import format_check

    result = compile_pde(args.expr, until="analyse", **_pde_arguments(args))
    report, timings = result.analysis, result.timings
    if args.json:
        data = report.to_dict()
        data["timings_s"] = {k: round(v, 4) for k, v in timings.items()}
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        print(format_check(report, verbose=args.verbose, timings=timings))
    return EXIT_OK if report.s_generative else EXIT_NOT_GENERATIVE


def _cmd_catalog(args) -> int:
    from .report.check import format_catalog_line
    from .spec.catalog import load_catalog

    rows = []
    for name, entry in sorted(load_catalog().items()):
        if entry.kind != "equation":
            rows.append((name, entry, None, None))
            continue
        try:
            report = compile_pde(name, until="analyse", dim=args.dim, repairs=False).analysis
            rows.append((name, entry, report, None))
        except Pde2genError as exc:
            rows.append((name, entry, None, exc.one_line()))
    if args.json:
        out = []
        for name, entry, report, error in rows:
            item = {"name": name, "kind": entry.kind, "title": entry.title, "pde": entry.pde,
                    "defaults": dict(entry.defaults)}
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
            defaults = ", ".join(f"{key} = {value}" for key, value in entry.defaults.items())
            print(f"{'':<18} {entry.pde}" + (f"   ({defaults})" if defaults else ""))
    return EXIT_OK


def _cmd_show(args) -> int:
    from .pipeline import show_stage

    stage_error = AnalysisError if args.stage in ("parse", "analyse") else DerivationError
    with numeric_failures_as(stage_error, f"stage {args.stage}"):
        text = show_stage(args.expr, args.stage, dim=args.dim, params=_parse_params(args.param),
                          construction=args.construction, problem_type=args.problem_type)
    print(text)
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

    from .report.explain import derive_for_report
    from .report.plots import write_plots

    try:  # fail fast, before the expensive stages
        Path(args.out).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write the plots to {args.out!r}: {exc.strerror or exc}") from None
    # the plots show this PDE only, not its repairs
    result = compile_pde(args.expr, until="analyse", repairs=False, **_pde_arguments(args))
    spec, analysis = result.spec, result.analysis
    with numeric_failures_as(DerivationError, "the derivation"):
        derivation, derivation_error = derive_for_report(spec, analysis)
    if derivation_error:
        print(f"note: no derived kernel ({derivation_error})")
    for outcome in write_plots(analysis, derivation, args.out):
        print(outcome.line())
    return EXIT_OK


def _cmd_explain(args) -> int:
    from .report.explain import derive_for_report, explain_latex, explain_markdown

    result = compile_pde(args.expr, until="analyse", **_pde_arguments(args))
    spec, analysis = result.spec, result.analysis
    with numeric_failures_as(DerivationError, "the derivation"):
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
    from .report.demo import run_demo

    return run_demo(out=args.out, steps=args.steps, data=args.data)


COMMANDS = {"check": _cmd_check, "catalog": _cmd_catalog, "show": _cmd_show, "build": _cmd_build,
            "plot": _cmd_plot, "explain": _cmd_explain, "demo": _cmd_demo}


def _report_error(line: str, exit_code: int, json_wanted: bool) -> int:
    """The one line on stderr; with --json also {"error", "exit_code"} on stdout."""
    if json_wanted:
        print(json.dumps({"error": line, "exit_code": exit_code}))
    print(line, file=sys.stderr)
    return exit_code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's overflow chatter; results say what failed
        return _main(argv)


def _main(argv: list[str]) -> int:
    traceback_wanted = "--traceback" in argv
    json_wanted = "--json" in argv
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
        line = exc.one_line() + (f" (hint: {' '.join(exc.hint.split())})" if exc.hint else "")
        return _report_error(line, exc.exit_code, json_wanted)
    except BrokenPipeError:  # output piped into e.g. `head`: not an error
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        return _report_error("error[pde2gen]: interrupted", 130, json_wanted)
    except Exception as exc:  # a bug in pde2gen, not the user's input: still one line, distinct code
        if traceback_wanted:
            raise
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        return _report_error(f"error[internal]: {message} (hint: this is a pde2gen bug; rerun with --traceback "
                             "and report it)", EXIT_INTERNAL, json_wanted)


if __name__ == "__main__":
    sys.exit(main())
