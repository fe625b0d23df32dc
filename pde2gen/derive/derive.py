"""The derive stage: (PDESpec, AnalysisReport) -> Derivation.

From the dispersion analysis it recognises the kernel family (pde2gen.derive.recognise: from the mathematics of the
symbol, never from names), fixes the time window from the noise alignment (t_min = t_of_sigma(sigma_min),
t_max = t_of_sigma(sigma_max), physics.md §4.7), writes the formulas of the report and the model card, says how
birth/death is handled (physics.md §4.6), and verifies everything (pde2gen.derive.verify): the kernel solves the PDE,
continuity holds for the density split, the family's characteristic function is the PDE's ghat, the sampler
draws from the kernel, the velocity transports the sampler's marginals, nothing is NaN.

A PDE that is not s-generative or whose kernel is not recognised gives ``family=None`` and
``not_derivable="not derivable yet: <what is missing>"``, never a wrong kernel.  Time is the PDE's own
variable (for augmented families, the augmented coordinate).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import sympy as sp

from ..analysis.admissibility import _density_split
from ..analysis.dispersion import AUGMENTED, Dispersion, analyse_dispersion, uniform_rate
from ..errors import DerivationError, UsageError
from ..families import FamilyConfig
from ..spec.spec import LAM, PDESpec
from . import reference
from .recognise import NOT_DERIVABLE, recognise
from .verify import Check, run_checks


@dataclass(frozen=True)
class Derivation:
    family: FamilyConfig | None
    not_derivable: str | None
    formulas: dict[str, str]
    t_min: float | None
    t_max: float | None
    sigma_min: float
    sigma_max: float
    rho: float
    birth_death: str
    checks: tuple[Check, ...] = field(default=())
    recognition: str = ""  # how the family was recognised (or why not)

    def to_dict(self) -> dict:
        return {
            "family": None if self.family is None else {"name": self.family.name,
                                                        "parameters": dict(self.family.parameters)},
            "not_derivable": self.not_derivable,
            "recognition": self.recognition,
            "formulas": dict(self.formulas),
            "t_min": self.t_min,
            "t_max": self.t_max,
            "sigma_min": self.sigma_min,
            "sigma_max": self.sigma_max,
            "rho": self.rho,
            "birth_death": self.birth_death,
            "checks": [check.to_dict() for check in self.checks],
        }


def derive(spec: PDESpec, analysis=None, *, sigma_min: float = 0.002, sigma_max: float = 80.0, rho: float = 7.0,
           seed: int = 0, checks: bool = True) -> Derivation:
    """Derive kernel, sampler, velocity, prior and time grid of ``spec`` and verify them.

    ``analysis`` is the AnalysisReport of pde2gen.analysis.analyse (its ``dispersion`` and ``s_generative`` are used);
    without one, the dispersion is computed here and positivity rests on the recognised family (every family
    is a positive kernel by construction: a subordinated Gaussian, or a product of 1-D Kac laws).
    Raises DerivationError naming the failed self-checks (unless ``checks=False``).
    """
    if not isinstance(spec, PDESpec):
        raise UsageError(f"derive() needs a PDESpec (from pde2gen.spec.parse), got {type(spec).__name__}")
    if analysis is not None and not hasattr(analysis, "dispersion"):
        raise UsageError(f"derive() needs an AnalysisReport (from pde2gen.analysis.analyse) or None, got "
                         f"{type(analysis).__name__}")
    if not (0 < sigma_min < sigma_max and math.isfinite(sigma_max) and rho > 0):
        raise UsageError(f"need 0 < sigma_min < sigma_max and rho > 0, got {sigma_min}, {sigma_max}, {rho}")
    grid = {"sigma_min": float(sigma_min), "sigma_max": float(sigma_max), "rho": float(rho)}

    if analysis is not None:
        dispersion = analysis.dispersion
        if not analysis.s_generative:
            return _not_derivable(f"the PDE is not s-generative ({_failed_conditions(analysis)})", grid)
    else:
        dispersion = analyse_dispersion(spec)
    if dispersion is None:
        return _not_derivable("no dispersion analysis for this PDE", grid)

    recognition = recognise(dispersion)
    if recognition.family is None:
        return _not_derivable(recognition.reason.removeprefix(NOT_DERIVABLE), grid, recognition.reason)
    family = recognition.family
    t_min = float(reference.t_of_sigma(family, sigma_min))
    t_max = float(reference.t_of_sigma(family, sigma_max))
    verified: tuple[Check, ...] = ()
    if checks:
        verified = run_checks(dispersion, family, t_min=t_min, t_max=t_max, seed=seed, **grid)
        failed = [check for check in verified if not check.passed]
        if failed:
            names = ", ".join(f"{c.name} (value {c.value:.3g} > tolerance {c.tolerance:.3g})" for c in failed)
            raise DerivationError(
                f"the derived {family.name} kernel failed its self-checks: {names}",
                hint="this is a bug or a numerical limit of pde2gen; rerun with checks disabled only to inspect",
            )
    birth_death = _birth_death(dispersion, family, t_min, t_max)
    formulas = _formulas(dispersion, family, t_min, t_max, **grid) | {"birth_death": birth_death,
                                                                      "recognised": recognition.reason}
    return Derivation(
        family=family, not_derivable=None, formulas=formulas, t_min=t_min, t_max=t_max, birth_death=birth_death,
        checks=verified, recognition=recognition.reason, **grid,
    )


def _not_derivable(what: str, grid: dict, recognition: str = "") -> Derivation:
    reason = NOT_DERIVABLE + what
    return Derivation(family=None, not_derivable=reason, formulas={}, t_min=None, t_max=None,
                      birth_death="not applicable: nothing derived", recognition=recognition or reason, **grid)


def _failed_conditions(analysis) -> str:
    parts = [f"{c.name} {c.status}: {c.reason}" for c in analysis.conditions if c.status != "PASS"]
    return "; ".join(parts) if parts else "a condition did not pass"


# ================================================================================================ text
def _number(value: float) -> str:
    return f"{value:.6g}"


def _time_text(dispersion: Dispersion) -> str:
    if dispersion.augmented_dims is not None:
        return "t is the radius of the D augmented dimensions (PFGM++'s r)"
    if dispersion.problem_type == AUGMENTED:
        return "t is the augmented coordinate (PFGM's z): data on t = 0, the decaying branch kept"
    return "t is the PDE's own time, forward from the data (t -> 0) to the prior (t_max)"


def _formulas(dispersion: Dispersion, family: FamilyConfig, t_min: float, t_max: float, *, sigma_min: float,
              sigma_max: float, rho: float) -> dict[str, str]:
    info = family.info
    p = {name: _number(value) for name, value in family.parameters}
    values = dispersion.spec.parameter_values()
    mass = dispersion.mass
    mass_text = sp.sstr(sp.sympify(mass).xreplace(values)) if mass is not None else "1 (normalised)"
    params = ", ".join(f"{name} = {value}" for name, value in p.items())
    split = _density_split(dispersion)
    return {
        "density": f"p = {split.p}; J = {split.flux}; R = {split.reaction} ({split.reaction_kind})",
        "family": f"{family.name} ({params})",
        "ghat": info.ghat_text + f"  ({params})",
        "kernel": info.kernel,
        "log_kernel": info.log_kernel,
        "mass": f"p_hat(0, t) = {mass_text}; the kernel is normalised by it",
        "sampler": "x = y + d, " + info.sampler,
        "velocity": info.velocity + info.velocity_note,
        "prior": info.prior(family.params, t_max) + f"  at t_max = {_number(t_max)} (sigma_max = {_number(sigma_max)})",
        "sigma": f"sigma(t) = {info.sigma}; t_min = {_number(t_min)}, t_max = {_number(t_max)}, grid uniform in "
                 f"sigma^(1/{_number(rho)}) from {_number(sigma_max)} to {_number(sigma_min)}",
        "time": _time_text(dispersion),
    }


def _birth_death(dispersion: Dispersion, family: FamilyConfig, t_min: float, t_max: float) -> str:
    values = dispersion.spec.parameter_values()
    reaction = sp.sympify(dispersion.reaction).xreplace(values)
    atoms = f"; {family.info.atoms}" if family.info.atoms is not None else ""
    if reaction == 0:
        return "none (R = 0)" + atoms if atoms else "none: R = 0, the mass is conserved"
    density_factor = sp.sympify(dispersion.density_factor).xreplace(values)
    ratio = uniform_rate(reaction, density_factor)
    if ratio is not None:  # R = rate p: first order, or the uniform split of a second-order PDE
        rate = float(sp.N(ratio))
        kind = "death" if rate < 0 else "birth"
        return (f"R = ({_number(rate)}) p is proportional to p: a uniform {kind} rate {_number(abs(rate))}, dropped "
                f"after normalising (the mass p_hat(0, t) carries it); the velocity transports the normalised kernel "
                f"exactly{atoms}")
    weights = family.info.weights(family.params, t_min, t_max, sp.sstr(reaction))
    if weights is not None:
        return weights
    return (f"R = ({sp.sstr(reaction)}) phi is not proportional to p: the velocity is the pure transport of the "
            "normalised kernel (no weights)")


__all__ = ["Derivation", "derive"]
