"""The derive stage: (PDESpec, AnalysisReport) -> Derivation.

From the dispersion analysis it recognises the kernel family (pde2gen.recognise: from the mathematics of the
symbol, never from names), fixes the time window from the noise alignment (t_min = t_of_sigma(sigma_min),
t_max = t_of_sigma(sigma_max), physics.md §4.7), writes the formulas of the report and the model card, says how
birth/death is handled (physics.md §4.6), and verifies everything (pde2gen.verify): the kernel solves the PDE,
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

from . import reference
from .dispersion import AUGMENTED, Dispersion, analyse_dispersion
from .errors import DerivationError, UsageError
from .families import FAMILIES, FamilyConfig
from .recognise import NOT_DERIVABLE, recognise
from .spec import LAM, PDESpec
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

    ``analysis`` is the AnalysisReport of pde2gen.analyse (its ``dispersion`` and ``s_generative`` are used);
    without one, the dispersion is computed here and positivity rests on the recognised family (every family
    is a positive kernel by construction: a subordinated Gaussian, or a product of 1-D Kac laws).
    Raises DerivationError naming the failed self-checks (unless ``checks=False``).
    """
    if not isinstance(spec, PDESpec):
        raise UsageError(f"derive() needs a PDESpec (from pde2gen.parse), got {type(spec).__name__}")
    if analysis is not None and not hasattr(analysis, "dispersion"):
        raise UsageError(f"derive() needs an AnalysisReport (from pde2gen.analyse) or None, got "
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
    formulas = _formulas(dispersion, family, t_min, t_max, **grid) | {"birth_death": birth_death}
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
    info = FAMILIES[family.name]
    p = {name: _number(value) for name, value in family.parameters}
    values = dispersion.spec.parameter_values()
    mass = dispersion.mass
    mass_text = sp.sstr(sp.sympify(mass).xreplace(values)) if mass is not None else "1 (normalised)"
    params = ", ".join(f"{name} = {value}" for name, value in p.items())
    kernel, log_kernel, prior = _kernel_text(family, p, t_max)
    return {
        "family": f"{family.name} ({params})",
        "ghat": info.ghat + f"  ({params})",
        "kernel": kernel,
        "log_kernel": log_kernel,
        "mass": f"p_hat(0, t) = {mass_text}; the kernel is normalised by it",
        "sampler": "x = y + d, " + info.sampler,
        "velocity": info.velocity + ("  (exact coupling; without its latent: the posterior mean given d)"
                                     if family.name in ("nig", "heat_nig") else ""),
        "prior": prior + f"  at t_max = {_number(t_max)} (sigma_max = {_number(sigma_max)})",
        "sigma": f"sigma(t) = {info.sigma}; t_min = {_number(t_min)}, t_max = {_number(t_max)}, grid uniform in "
                 f"sigma^(1/{_number(rho)}) from {_number(sigma_max)} to {_number(sigma_min)}",
        "time": _time_text(dispersion),
    }


def _kernel_text(family: FamilyConfig, p: dict[str, str], t_max: float) -> tuple[str, str, str]:
    name = family.name
    if name == "gaussian":
        return ("(4 pi kappa t)^(-N/2) exp(-|d|^2 / (4 kappa t))",
                "-(N/2) log(4 pi kappa t) - |d|^2 / (4 kappa t)",
                f"y + N(0, 2 kappa t_max I) = N(0, {_number(2 * family.params['kappa'] * t_max)} I)")
    if name == "cauchy":
        return ("Gamma((N+1)/2) c t / (pi^((N+1)/2) (|d|^2 + (c t)^2)^((N+1)/2))",
                "lgamma((N+1)/2) - ((N+1)/2) log(pi) + log(c t) - ((N+1)/2) log(|d|^2 + (c t)^2)",
                "y + multivariate Cauchy of scale c t_max (radii heavy-tailed; not clipped)")
    if name == "student_t":
        return ("Gamma((N+D)/2) / (Gamma(D/2) (pi D)^(N/2) s^N) (1 + |d|^2 / (D s^2))^(-(N+D)/2), s = c t / sqrt(D)",
                "lgamma((N+D)/2) - lgamma(D/2) - (N/2) log(pi D) - N log s - ((N+D)/2) log1p(|d|^2 / (D s^2))",
                "y + multivariate Student-t, D degrees of freedom, scale c t_max / sqrt(D)")
    if name == "nig":
        return (("2 e^(m tau) (2 pi)^(-(N+1)/2) m^((N+1)/2) tau r^(-(N+1)/2) K_((N+1)/2)(m r), tau = c t, "
                "r = sqrt(|d|^2 + tau^2)"),
                ("log 2 + m tau - ((N+1)/2) log(2 pi) + ((N+1)/2) log m + log tau - ((N+1)/2) log r "
                "+ log K_((N+1)/2)(m r)  (large order: uniform Debye expansion)"),
                "y + sqrt(V) eps, V ~ InverseGaussian(c t_max / m, (c t_max)^2)")
    if name == "heat_nig":
        return (("E_X[N(d; 0, (2 kappa t + X) I)], X ~ InverseGaussian(c t / m, (c t)^2) (m = 0: the Levy law "
                 "of (c t)^2 / Z^2): the heat kernel convolved with the NIG (Cauchy) kernel"),
                "log of that one-dimensional mixture, by the trapezoid rule in log X on the integrand's support",
                "y + sqrt(2 kappa t_max + X) eps, X ~ InverseGaussian(c t_max / m, (c t_max)^2)"
                + (" (heavy-tailed: Cauchy component)" if family.params["m"] == 0 else ""))
    if name == "stable":
        return ("E_S[N(d; 0, 2 (kappa t)^(2/alpha) S I)], S positive (alpha/2)-stable: no closed form",
                "log of the Zolotarev-density mixture, by quadrature in log S",
                "y + sqrt(2 (kappa t_max)^(2/alpha) S) eps (isotropic alpha-stable, heavy-tailed)")
    return (("prod_i [(a e^(-a t) / 2c)(I0(z_i) + a t I1(z_i)/z_i) on |d_i| < c t, z_i = a sqrt(c^2 t^2 - d_i^2)/c] "
            "+ atoms e^(-a t)/2 at d_i = +-c t"),
            "sum_i of log a.c. density (|d_i| < c t) or log(e^(-a t)/2) on an atom (via i0e, i1e)",
            "y + N independent Kac coordinates at t_max, in [-c t_max, c t_max]")


def _birth_death(dispersion: Dispersion, family: FamilyConfig, t_min: float, t_max: float) -> str:
    values = dispersion.spec.parameter_values()
    reaction = sp.sympify(dispersion.reaction).xreplace(values)
    if family.name == "kac_product":
        return ("none (R = 0); each coordinate has atoms e^(-a t)/2 at +-c t that feed the a.c. part at the light "
                "cone: they are sampled explicitly in the latent and move at +-c")
    if reaction == 0:
        return "none: R = 0, the mass is conserved"
    density_factor = sp.sympify(dispersion.density_factor).xreplace(values)
    if not density_factor.has(LAM):
        rate = sp.sstr(sp.nsimplify(reaction / density_factor))
        return (f"R = ({rate}) p is proportional to p: a uniform death rate, dropped after normalising "
                f"(the mass p_hat(0, t) carries it); the velocity transports the normalised kernel exactly")
    if family.name == "nig":
        m, c = family.params["m"], family.params["c"]
        spread = [1.0 / math.sqrt(max(m * c * t, 1e-300)) for t in (t_min, t_max)]
        return (f"R = ({sp.sstr(reaction)}) phi is not proportional to p (the death rate R/p varies in x): the "
                "default velocity is the quantile coupling, a pure transport of the normalised kernel (no weights). "
                "The PDE's own flow J/p = d/t would need importance weights d log w/dt = R/p ~ m^2 V/t, whose "
                f"relative spread ~ 1/sqrt(m c t) is {_number(spread[0])} at t_min and {_number(spread[1])} at "
                "t_max: the weights degenerate unless m c t >> 1 (monitor the ESS if used)")
    return (f"R = ({sp.sstr(reaction)}) phi is not proportional to p: the velocity is the pure transport of the "
            "normalised kernel (no weights)")


__all__ = ["Derivation", "derive"]
