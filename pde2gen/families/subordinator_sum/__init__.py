"""Sums of two or more non-Gaussian subordinators, with or without heat: this declaration, its NumPy/SciPy reference
twin (reference.py) and its torch runtime (runtime.py, read as text by the renderer and inlined into generated
modules; never imported by the compiler).

f(s) = kappa s + sum_j kappa_j s^(alpha_j / 2) + sum_i c_i (sqrt(s + m_i^2) - m_i): up to STABLE_SLOTS stable and
NIG_SLOTS inverse-Gaussian components, each slot a pair of float parameters (a zero coefficient leaves a slot unused,
so the parameters stay a fixed tuple of floats for the templates and pde2gen.json)."""
from __future__ import annotations

import sympy as sp

from ..declaration import FamilyInfo, Shape

STABLE_SLOTS = 4
NIG_SLOTS = 4
# powers p = alpha / 2 of s^p the tables are sized for. Below, the heavy tail needs a table over > 30 / p nats of
# log V; above, the stable lower tail exp(-A x^(-p/(1-p))) needs a spacing below 0.1 (1 - p) / p and the convolution
# a span of 14 / h, work ~ 1/h^2. Measured (N = 2 builds with every self-check, 2 busy cores): s^(15/16) + s^(1/2)
# 75-117 s (one table ~3 s; p = 31/32 would be ~4x), s^(1/32) + s^(1/2) 90 s, four stable parts 19-27 s
MIN_POWER = sp.Rational(1, 32)  # the heaviest tail: the table reaches 30 / p above its centre
MAX_POWER = sp.Rational(15, 16)  # the steepest lower tail: grid spacing 0.1 (1 - p) / p


def _parameter_names() -> tuple[str, ...]:
    """kappa, then (kappa_j, alpha_j) per stable slot, then (c_i, m_i) per NIG slot (a zero coefficient: unused);
    the reference twin and the runtime take the same names."""
    names = ["kappa"]
    for j in range(1, STABLE_SLOTS + 1):
        names += [f"kappa_{j}", f"alpha_{j}"]
    for i in range(1, NIG_SLOTS + 1):
        names += [f"c_{i}", f"m_{i}"]
    return tuple(names)


PARAMETERS = _parameter_names()


def _components(shape: Shape):
    """(heat coefficient, [(power, coefficient)], [(m, c)]) of a semigroup shape."""
    heat = shape.powers.get(1, 0.0)
    stables = sorted((p, c) for p, c in shape.powers.items() if p != 1)
    nigs = sorted(shape.nig.items())
    return heat, stables, nigs


def _refusal(shape: Shape) -> str | None:
    """Why a sum of two or more non-Gaussian subordinators is not taken (None: taken, or not a sum of that kind)."""
    if shape.route != "semigroup":
        return None
    _, stables, nigs = _components(shape)
    if len(stables) + len(nigs) < 2:
        return None
    if any(not 0 < p < 1 for p, _ in stables):
        return None  # not Bernstein: the analysis says so
    outside = [str(p) for p, _ in stables if not MIN_POWER <= p <= MAX_POWER]
    if outside:
        return (f"the sums of subordinators are derived for powers s^p with {MIN_POWER} <= p <= {MAX_POWER} (the "
                "law of the sum is tabulated in log V with spacing 0.1 (1 - p) / p and reach 30 / p: a build at "
                f"either limit takes 1-2 min, beyond it several); s^({', '.join(outside)}) is outside")
    if len(stables) > STABLE_SLOTS or len(nigs) > NIG_SLOTS:
        return (f"the sums of subordinators are derived for at most {STABLE_SLOTS} fractional powers and "
                f"{NIG_SLOTS} sqrt(s + m^2) - m terms (the module's parameter slots; each part adds three "
                f"convolutions per table); this one has {len(stables)} and {len(nigs)}")
    return None


def _recognise(shape: Shape):
    """Two or more non-Gaussian components (powers s^p, 0 < p < 1, and c (sqrt(s + m^2) - m), m > 0), with or
    without kappa s: V = 2 kappa t + the sum of independent components."""
    if shape.route != "semigroup" or _refusal(shape) is not None:
        return None
    heat, stables, nigs = _components(shape)
    if len(stables) + len(nigs) < 2 or any(c <= 0 for _, c in stables + nigs) or heat < 0:
        return None
    params = {name: 0.0 for name in PARAMETERS}
    params["kappa"] = float(heat)
    for j in range(1, STABLE_SLOTS + 1):
        params[f"alpha_{j}"] = 1.0  # an unused slot's index (its coefficient is 0)
    for j, (power, coefficient) in enumerate(stables, 1):
        params[f"kappa_{j}"], params[f"alpha_{j}"] = float(coefficient), float(2 * power)
    for i, (m, c) in enumerate(nigs, 1):
        params[f"c_{i}"], params[f"m_{i}"] = float(c), float(m)
    terms = ([f"{heat:.6g} s"] if heat else []) + [f"{c:.6g} s^({p})" for p, c in stables] + [
        f"{c:.6g} (sqrt(s + {m * m:.6g}) - {m:.6g})" for m, c in nigs]
    reason = (f"f(s) = {' + '.join(terms)}: the sum of {len(stables) + len(nigs)} independent non-Gaussian "
              f"subordinators{' and the heat kernel' if heat else ''} (V = {'2 kappa t + ' if heat else ''}"
              "X_1 + ... + X_K, independent draws)")
    return params, reason


def _active(p: dict):
    stables = [(p[f"kappa_{j}"], p[f"alpha_{j}"]) for j in range(1, STABLE_SLOTS + 1) if p[f"kappa_{j}"] > 0]
    nigs = [(p[f"c_{i}"], p[f"m_{i}"]) for i in range(1, NIG_SLOTS + 1) if p[f"c_{i}"] > 0]
    return stables, nigs


def _describe(p: dict) -> str:
    stables, nigs = _active(p)
    parts = ([f"diffusion (kappa = {p['kappa']:.6g})"] if p["kappa"] > 0 else [])
    parts += [f"fractional diffusion (alpha = {alpha:.6g}, kappa = {k:.6g})" for k, alpha in stables]
    parts += [(f"Yukawa/NIG (c = {c:.6g}, m = {m:.6g})" if m > 0 else f"Cauchy (c = {c:.6g})") for c, m in nigs]
    return " convolved with ".join(parts) + ": the sum of the independent subordinators"


def _ghat(p, s, t):
    f = p["kappa"] * s
    for j in range(1, STABLE_SLOTS + 1):
        f += p[f"kappa_{j}"] * s ** (p[f"alpha_{j}"] / 2)
    for i in range(1, NIG_SLOTS + 1):
        f += p[f"c_{i}"] * (sp.sqrt(s + p[f"m_{i}"] ** 2) - p[f"m_{i}"])
    return sp.exp(-t * f)


FAMILY = FamilyInfo(
    name="subordinator_sum",
    parameters=PARAMETERS,
    runtime_class="SubordinatorSumFamily",
    ghat_text="exp(-t [kappa k^2 + sum_j kappa_j k^alpha_j + sum_i c_i (sqrt(k^2 + m_i^2) - m_i)])",
    sampler=("V = 2 kappa t + sum_j 2 (kappa_j t)^(2/alpha_j) S_j + sum_i X_i, S_j positive (alpha_j/2)-stable "
             "(Kanter), X_i ~ InverseGaussian(c_i t / m_i, (c_i t)^2), all independent"),
    velocity=("quantile couplings summed: (V_dot / (2 V)) d, V_dot = 2 kappa + sum_j (2/alpha_j) X_j / t + "
              "sum_i (2 X_i / t) [1 - m_i sqrt(pi X_i/2) erfcx((m_i X_i + c_i t)/sqrt(2 X_i))]"),
    sigma="sqrt(2 kappa t + sum_j 2 median(S_j) (kappa_j t)^(2/alpha_j) + sum_i tau_i^2 / (1 + m_i tau_i))",
    kernel=("E_V[N(d; 0, V I)], the law of V = 2 kappa t + X_1 + ... + X_K tabulated in log V by convolving the "
            "components' laws"),
    log_kernel=("log of that one-dimensional mixture, by the trapezoid rule in log (V - 2 kappa t) over the "
                "convolution table (6-point Lagrange interpolation between its nodes)"),
    prior=lambda p, t_max: ("y + sqrt(V) eps, V = 2 kappa t_max + the components at t_max"
                            + (" (heavy-tailed: stable or Cauchy component)" if _active(p)[0]
                               or any(m == 0 for _, m in _active(p)[1]) else "")),
    describe=_describe,
    ghat=_ghat,
    recognise=_recognise,
    refusal=_refusal,
    velocity_note=("  (exact coupling, latent log X per component; without it: the posterior mean given d, from "
                   "the probability flux of the law of V)"),
    subordinated=True,
)
