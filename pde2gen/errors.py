"""Error classes of pde2gen, one per stage, each with its own CLI exit code.

The CLI prints ``error[<stage>]: <message>`` and, when present, ``hint: <hint>`` and exits with
``exit_code``; it never shows a traceback unless ``--traceback`` is given.
Exit codes 0 and 1 are reserved for verdicts (s-generative / not s-generative).
"""
from __future__ import annotations

import contextlib
import functools

from mpmath.libmp import NoConvergence  # mpmath ships with SymPy


class Pde2genError(Exception):
    """Base class. ``stage`` names the compiler stage, ``hint`` says what to do about it."""

    stage = "pde2gen"
    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = f"error[{self.stage}]: {self.message}"
        return " ".join(text.split())


class ParseError(Pde2genError, ValueError):
    """Malformed or unsafe input: syntax, unknown names, empty or oversized text, unknown catalog terms."""

    stage = "parse"
    exit_code = 2


class NonLinearPDEError(ParseError):
    """A term is not linear in the unknown u (e.g. ``u**2`` or ``u*diff(u, t)``)."""


class UnsupportedPDEError(ParseError):
    """Linear but outside the supported class: x/t-dependent coefficients, no time derivative, mixed systems."""


class AnalysisError(Pde2genError):
    """The analysis could not be carried out (e.g. SymPy cannot give the roots of the symbol)."""

    stage = "analyse"
    exit_code = 3


class DerivationError(Pde2genError):
    """No kernel/sampler/velocity could be derived, or a derived object failed its own verification."""

    stage = "derive"
    exit_code = 4


class RenderError(Pde2genError):
    """Template rendering failed, or the rendered code does not parse / pass its checks."""

    stage = "render"
    exit_code = 5


class UsageError(Pde2genError):
    """Bad command-line usage (options, paths)."""

    stage = "usage"
    exit_code = 2


class OutputPathError(UsageError):
    """The output path cannot be written: a missing or read-only parent, /proc, a name too long, a full disk."""

    stage = "output"
    exit_code = 2


# Numerical failures of a stage on extreme but well-formed input (overflow, NaN, a singular matrix: numpy's
# LinAlgError is a ValueError, a huge allocation a MemoryError): that stage's error, not an internal one.
NUMERIC_FAILURES = (ArithmeticError, ValueError, MemoryError, NoConvergence)


@contextlib.contextmanager
def numeric_failures_as(error_class: type[Pde2genError], what: str):
    """Turn a numerical failure inside the block into ``error_class`` (one line, the stage's exit code)."""
    try:
        yield
    except Pde2genError:
        raise
    except NUMERIC_FAILURES as exc:
        detail = " ".join(str(exc).split())[:160] or "no message"
        raise error_class(f"{what} failed numerically ({type(exc).__name__}: {detail})",
                          hint="the parameters may be too extreme for float64; try moderate values") from exc


def foreign_errors_as(error_class: type[Pde2genError], what: str):
    """Decorator for the public API: any exception that is not pde2gen's own (a TypeError from a wrong argument
    type, the error a user object raises) becomes ``error_class``, so callers catch ``Pde2genError`` alone."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except Pde2genError:
                raise
            except RecursionError:
                raise error_class(f"{what}: the input is nested too deeply") from None
            except Exception as exc:
                detail = " ".join(str(exc).split())[:160] if type(exc).__str__ is not object.__str__ else ""
                raise error_class(f"{what}: {type(exc).__name__}" + (f": {detail}" if detail else "")) from exc

        return wrapper

    return decorate
