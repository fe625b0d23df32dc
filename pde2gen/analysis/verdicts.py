"""The verdict types every condition module returns: PASS/FAIL/UNDECIDED, Condition, DensitySplit, Prior,
and the JSON helpers their ``to_dict`` use."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sympy as sp

PASS, FAIL, UNDECIDED = "PASS", "FAIL", "UNDECIDED"


# ---------------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Condition:
    """One condition's verdict. ``witness`` holds the numbers that prove a FAIL (or support a PASS)."""

    name: str
    status: str  # PASS / FAIL / UNDECIDED
    reason: str
    witness: dict | None = None
    method: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "reason": self.reason,
                "witness": _plain(self.witness), "method": self.method}


@dataclass(frozen=True)
class DensitySplit:
    """d_t p + div J = R (physics.md §1): p, J, R as text, and what kind of reaction R is."""

    p: str
    flux: str
    reaction: str
    reaction_kind: str  # "none", "uniform" (R = rate * p) or "spatially varying"
    detail: str

    def to_dict(self) -> dict:
        return {"p": self.p, "J": self.flux, "R": self.reaction, "reaction_kind": self.reaction_kind,
                "detail": self.detail}


@dataclass(frozen=True)
class Prior:
    """Small-k law of the kernel: lambda*(0) - lambda*(k) ~ scale k^alpha, and the k -> oo gap."""

    family: str | None  # gaussian / cauchy / stable / student_t, or None (no probability law)
    alpha: float | None
    scale: float | None
    large_k_gap: float | None  # finite limit of lambda*(0) - lambda*(k), inf if it grows, None if unknown
    description: str

    def to_dict(self) -> dict:
        return {"family": self.family, "alpha": self.alpha, "scale": self.scale,
                "large_k_gap": _plain(self.large_k_gap), "description": self.description}


def _fmt(value: float) -> str:
    """6 significant digits, without the '-0' of rounding noise."""
    value = float(value)
    return "0" if abs(value) < 1e-300 or f"{value:.6g}" == "-0" else f"{value:.6g}"


def _plain(value):
    """JSON-ready: floats (inf/nan as strings), ints, strings, lists and dicts of those."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, complex):
        return {"real": _plain(value.real), "imag": _plain(value.imag)}
    return sp.sstr(value)
