"""See the physics (``pde2gen plot``): the figures behind a verdict, for passing and failing PDEs alike.

- ``plot_dispersion``: Re lambda (= Im omega) and Im lambda (= -Re omega) of every branch against k, the
  carrying branches drawn solid, the smoothing gap lambda*(0) - lambda*(k) shaded green where C2 holds and
  the wave numbers where it fails (lambda*(k) >= lambda*(0)) shaded red;
- ``plot_kernel``: the density kernel's radial profile at a few times, log10 |p| (negative parts in red) and
  p / p(0) on a linear axis (negative lobes filled red), so that a C1 failure is visible. Derivable families
  use ``reference.log_kernel`` along a ray in N dimensions (Kac atoms as markers); other PDEs the 1-D kernel
  (``positivity.kernel_1d`` by FFT, or the closed form ``positivity.riemann_kernel`` with its atoms), which is
  the 1-D marginal of the isotropic kernel when N > 1;
- ``plot_velocity`` (N = 2, derivable): the exact marginal velocity of a small mixture at a few times and
  trajectories of the exact flow integrated from the prior at t_max back to t_min;
- ``plot_prior`` (derivable): the prior (the kernel at t_max) against the marginal at t_max, as densities of
  log10 |x|, with the Kolmogorov-Smirnov distance between them.

Each ``plot_*`` returns a ``matplotlib.figure.Figure`` (tests inspect its artists) or raises ``PlotSkipped``
with the reason; ``write_plots`` saves the PNGs and reports what it skipped. Figures are built on
``matplotlib.figure.Figure`` with the Agg canvas and never through pyplot: headless, and no global figure
state to leak (matplotlib is imported only here, lazily, so ``import pde2gen`` stays fast).
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import sympy as sp

from ..analysis.dispersion import AUGMENTED, Dispersion
from ..spec.spec import S

# Pixel size of every PNG: FIGURE_SIZE inches at DPI.
DPI = 100
FIGURE_SIZE = (12.0, 4.6)
VELOCITY_FIGURE_SIZE = (12.0, 9.0)
K_RANGE = (1e-3, 1e3)
# Times of the 1-D kernels of non-derivable PDEs (t = 1 is the reference time of the analysis' witnesses).
KERNEL_TIMES_1D = (0.3, 1.0, 3.0)
# Noise levels at which derivable kernels and velocity fields are drawn (times from sigma, physics.md §4.7).
KERNEL_SIGMAS = (0.5, 1.0, 2.0)
VELOCITY_SIGMAS = (0.2, 0.6, 2.0)
# A small 2-D mixture: four data points, equal weights.
MIXTURE_2D = np.array([[-1.0, -0.6], [1.2, 0.9], [0.9, -1.1], [-0.8, 1.3]])
TRAJECTORIES = 20
FLOW_STEPS = 48
PRIOR_DRAWS = 10000
MAX_PRIOR_FLOATS = 4_000_000  # draws x N: keeps the prior plot's memory bounded in image dimensions
# Relative size (to p(0)) below which an FFT kernel value is round-off (the FFT's floor is ~1e-16).
FFT_FLOOR = 1e-13


class PlotSkipped(Exception):
    """A plot that makes no sense for this PDE; the message says why."""


@dataclass(frozen=True)
class PlotOutcome:
    """One requested PNG: where it was written, or why it was skipped."""

    name: str
    path: Path | None
    skipped: str | None = None

    def line(self) -> str:
        return f"wrote {self.path}" if self.path is not None else f"skipped {self.name}.png: {self.skipped}"


# ---------------------------------------------------------------------------------------------- helpers
def _figure(size=FIGURE_SIZE, columns: int = 2, rows: int = 1):
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=DPI, layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False)
    return figure, axes


def numeric_dispersion(analysis) -> tuple[Dispersion, str]:
    """The analysis' dispersion with a number for every parameter (1 for those without a value), and a note
    naming the parameters set to 1 (empty when all had values)."""
    disp = analysis.dispersion
    if disp is None:
        raise PlotSkipped(f"no dispersion analysis: {analysis.condition('C0').reason}")
    spec = disp.spec
    free = spec.free_parameters()
    if not free:
        return disp, ""
    trial = tuple(replace(p, value=sp.Integer(1)) if p.value is None else p for p in spec.parameters)
    names = ", ".join(p.name for p in free)
    return replace(disp, spec=replace(spec, parameters=trial)), f"drawn at {names} = 1"


def _title_suffix(note: str) -> str:
    return f" ({note})" if note else ""


def _derived_family(analysis, derivation, what: str):
    """The derived family, or PlotSkipped saying (briefly) why there is none."""
    if derivation is not None and getattr(derivation, "family", None) is not None:
        return derivation.family
    if not analysis.s_generative:
        failed = ", ".join(f"{c.name} {c.status}" for c in analysis.conditions if c.status != "PASS")
        why = f"the PDE is not s-generative ({failed})"
    else:
        why = getattr(derivation, "not_derivable", None) or "the derive stage failed"
    raise PlotSkipped(f"{what} needs a derived kernel family; {why}")


def _times_of_sigmas(family, sigmas) -> list[float]:
    from ..derive import reference

    return [float(reference.t_of_sigma(family, s)) for s in sigmas]


# ---------------------------------------------------------------------------------------------- dispersion
def branch_values(disp: Dispersion, s: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(len(s), J) complex growth rates lambda_b(s) and a label per branch.

    The symbolic branches (as in ``pde2gen check``) evaluated in complex arithmetic keep each branch's
    identity across k; without closed-form roots, the numeric roots sorted by decreasing Re lambda.
    """
    values = disp.spec.parameter_values()
    if disp.branches is not None:
        columns = []
        for branch in disp.branches:
            evaluate = sp.lambdify(S, branch.xreplace(values), "numpy")
            with np.errstate(all="ignore"):
                values_b = np.asarray(evaluate(s.astype(complex)), dtype=complex)
                columns.append(np.broadcast_to(values_b, s.shape))
        roots = np.stack(columns, axis=1)
        if np.all(np.isfinite(roots)):
            return roots, [sp.sstr(b) for b in disp.branches]
    roots = disp.numeric_branches(s)
    return roots, [f"root {i + 1} by decreasing Re lambda" for i in range(roots.shape[1])]


def carrying_branches(disp: Dispersion, s: np.ndarray, roots: np.ndarray) -> list[bool]:
    """Which branches carry the density: the decaying root for augmented problems, else those with a
    non-zero amplitude q(lambda_b) / P'(lambda_b) somewhere on the grid (coincident roots all carry)."""
    if disp.problem_type == AUGMENTED:
        decaying = int(np.argmin(roots[len(s) // 2].real))
        return [b == decaying for b in range(roots.shape[1])]
    amplitudes = np.abs(disp.numeric_amplitudes(s, roots))
    finite = np.isfinite(amplitudes)
    scale = np.max(np.where(finite, amplitudes, 0.0), axis=1, keepdims=True)
    carries = ~finite | (amplitudes > 1e-12 * np.maximum(scale, 1e-300))
    return [bool(flag) for flag in np.any(carries, axis=0)]


def smoothing_failure(disp: Dispersion, s: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """(lambda*(s), lambda*(0), mask where C2 fails: lambda*(k) >= lambda*(0) up to root accuracy)."""
    from ..analysis.smoothing import GAP_TOLERANCE

    growth = disp.numeric_growth(s)
    growth0 = float(disp.numeric_growth(np.zeros(1))[0])
    tolerance = GAP_TOLERANCE * (1.0 + np.max(np.abs(disp.numeric_branches(s)), axis=1))
    return growth, growth0, growth0 - growth <= tolerance


def plot_dispersion(analysis):
    """Re lambda and Im lambda of every branch against k; the smoothing gap green, its failure red."""
    disp, note = numeric_dispersion(analysis)
    k = np.logspace(math.log10(K_RANGE[0]), math.log10(K_RANGE[1]), 601)
    s = k * k
    roots, labels = branch_values(disp, s)
    carrying = carrying_branches(disp, s, roots)
    growth, growth0, fails = smoothing_failure(disp, s)

    figure, axes = _figure()
    ax_re, ax_im = axes[0]
    colours = ("tab:blue", "tab:orange", "tab:purple", "tab:brown", "tab:olive", "tab:cyan")
    discarded = "growing root, discarded" if disp.problem_type == AUGMENTED else "amplitude 0"
    for b, (label, carries) in enumerate(zip(labels, carrying)):
        style = {"color": colours[b % len(colours)], "lw": 2.2 if carries else 1.2,
                 "ls": "-" if carries else "--"}
        role = "" if carries else f"  ({discarded}: carries no density)"
        text = f"branch {b + 1}: lambda = {label}{role}"
        ax_re.plot(k, roots[:, b].real, label=text, gid=f"branch-re-{b}", **style)
        ax_im.plot(k, roots[:, b].imag, label=text, gid=f"branch-im-{b}", **style)
    ax_re.axhline(growth0, color="black", lw=0.8, ls=":", label=f"lambda*(0) = {growth0 + 0.0:.4g}")  # no -0
    if np.any(~fails):
        ax_re.fill_between(k, growth, growth0, where=~fails, color="tab:green", alpha=0.25,
                           gid="smoothing-gap", label="smoothing gap lambda*(0) - lambda*(k) > 0")
    for index, (start, stop) in enumerate(_runs(fails)):
        ax_re.axvspan(k[start], k[stop - 1], color="tab:red", alpha=0.18, gid="smoothing-fails",
                      label="C2 fails: lambda*(k) >= lambda*(0)" if index == 0 else None)
    if np.all(fails):
        ax_re.text(0.5, 0.75, "lambda*(k) = lambda*(0) for every k:\nno mode is ever forgotten",
                   transform=ax_re.transAxes, ha="center", fontsize=9, color="tab:red",
                   gid="no-smoothing")
    scale = max(1.0, float(np.max(np.abs(roots[np.argmin(np.abs(k - 1.0))]))))
    for ax, values, what in ((ax_re, roots.real, "Re lambda = Im omega  (growth rate)"),
                             (ax_im, roots.imag, "Im lambda = -Re omega  (frequency)")):
        ax.set_xscale("log")
        linthresh = 1e-2 * scale
        ax.set_yscale("symlog", linthresh=linthresh)
        # Autoscaling a symlog axis pads by decades: bound it by the data (one linthresh past zero).
        ax.set_ylim(min(2.0 * values.min(), -linthresh), max(2.0 * values.max(), linthresh))
        _plain_log_ticks(ax)
        ax.set_xlabel("k = |wave vector|")
        ax.set_ylabel(what)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    c2 = analysis.condition("C2")
    ax_re.set_title(f"growth rate per branch; C2 {c2.status}{_title_suffix(note)}", fontsize=10)
    ax_im.set_title("oscillation per branch (Im lambda = 0: no oscillation)", fontsize=10)
    figure.suptitle(f"dispersion of {analysis.spec.pretty()}", fontsize=11)
    return figure


def _plain_log_ticks(ax) -> None:
    """Log and symlog axes make hundreds of minor ticks and mathtext labels (10^k), which triple the time to
    save a figure: major ticks only, labelled 0.001 / 1e+06."""
    from matplotlib.ticker import FuncFormatter, NullLocator

    for axis in (ax.xaxis, ax.yaxis):
        axis.set_minor_locator(NullLocator())
        axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index ranges of the True runs of a boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int), [0]])))
    return list(zip(edges[::2], edges[1::2]))


# ---------------------------------------------------------------------------------------------- kernel
@dataclass(frozen=True)
class KernelProfile:
    """p(|x|, t) along a ray as natural log |p| and sign (log form: N-dimensional densities underflow)."""

    t: float
    x: np.ndarray
    log_abs: np.ndarray  # -inf where p = 0
    sign: np.ndarray
    label: str
    atoms: tuple[tuple[float, float], ...] = ()  # (|x|, log of the atom's weight)
    minimum: tuple[float, float] | None = None  # refined (x, p) of a negative minimum, if any

    def peak_log_abs(self) -> float:
        """log max |p| (0 when p vanishes identically, e.g. the wave's continuous part)."""
        finite = self.log_abs[np.isfinite(self.log_abs)]
        return float(finite.max()) if len(finite) else 0.0


def plot_kernel(analysis, derivation=None):
    """The kernel's radial profile at a few times: log10 |p| (negative red) and p / p(0) (negative filled)."""
    if derivation is not None and getattr(derivation, "family", None) is not None:
        profiles, title = _family_profiles(analysis, derivation.family)
    else:
        profiles, title = _one_dimensional_profiles(analysis)

    figure, axes = _figure()
    ax_log, ax_lin = axes[0]
    colours = ("tab:blue", "tab:green", "tab:purple")
    negative_labelled = False
    core = 0.0  # the |x| beyond which every profile is below 1e-3 of its peak: the linear panel's range
    for index, (profile, colour) in enumerate(zip(profiles, colours)):
        log10_abs = profile.log_abs / math.log(10.0)
        positive, negative = profile.sign > 0, profile.sign < 0
        ax_log.plot(profile.x, np.where(positive, log10_abs, np.nan), color=colour, label=profile.label,
                    gid=f"kernel-log-{profile.t:g}")
        peak = profile.peak_log_abs()
        with np.errstate(invalid="ignore"):
            ratio = profile.sign * np.exp(profile.log_abs - peak)
        ax_lin.plot(profile.x, ratio, color=colour, label=profile.label, gid=f"kernel-ratio-{profile.t:g}")
        visible = np.flatnonzero(np.abs(ratio) > 1e-3)
        atoms_at = (where for where, _ in profile.atoms)
        core = max(core, profile.x[visible[-1]] if len(visible) else 0.0, *atoms_at)
        if np.any(negative):
            label = "p < 0 (C1 fails)" if not negative_labelled else None
            ax_log.plot(profile.x, np.where(negative, log10_abs, np.nan), color="tab:red", lw=2.5, ls="--",
                        label=label, gid=f"kernel-negative-{profile.t:g}")
            ax_lin.fill_between(profile.x, ratio, 0.0, where=negative, color="tab:red", alpha=0.35,
                                label=label, gid=f"kernel-negative-fill-{profile.t:g}")
            negative_labelled = True
        for where, log_weight in profile.atoms:
            ax_log.plot([where], [log_weight / math.log(10.0)], marker="D", ms=8, ls="none", color=colour,
                        markeredgecolor="black", gid=f"kernel-atom-{profile.t:g}",
                        label=f"atom at |x| = {where:.3g} (t = {profile.t:.4g})")
            ax_lin.axvline(where, color=colour, ls=":", lw=1.2)
        if profile.minimum is not None:
            x_min, p_min = profile.minimum
            ax_lin.annotate(f"min p = {p_min:.4g} at |x| = {x_min:.3g} (t = {profile.t:g})",
                            xy=(x_min, p_min * math.exp(-peak)), xytext=(0.4, 0.7 - 0.1 * index),
                            textcoords="axes fraction", fontsize=8, color=colour,
                            gid=f"kernel-minimum-{profile.t:g}",
                            arrowprops={"arrowstyle": "->", "color": colour})
    if core > 0:
        ax_lin.set_xlim(0.0, 1.1 * core)
    ax_lin.axhline(0.0, color="black", lw=0.8)
    ax_log.set_xlabel("|x|")
    ax_log.set_ylabel("log10 |p(|x|, t)|")
    ax_lin.set_xlabel("|x|")
    ax_lin.set_ylabel("p(|x|, t) / max |p(., t)|")
    for ax in (ax_log, ax_lin):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    c1 = analysis.condition("C1")
    ax_log.set_title(f"{title}\nC1 {c1.status} ({c1.method})", fontsize=10)
    ax_lin.set_title("linear scale, normalised by the peak (atoms: dotted lines)", fontsize=10)
    figure.suptitle(f"density kernel of {analysis.spec.pretty()}", fontsize=11)
    return figure


def _family_profiles(analysis, family) -> tuple[list[KernelProfile], str]:
    """log_kernel of the derived family along the first axis of R^N at the times of KERNEL_SIGMAS."""
    from ..derive import reference
    from ..families import FAMILIES

    N = analysis.spec.dim
    # a product kernel whose coordinates live in [-v t, v t] (atoms on the front): plotted inside the cone
    speed = FAMILIES[family.name].front_speed_parameter
    times = _times_of_sigmas(family, KERNEL_SIGMAS)
    reach = 5.0 * max(KERNEL_SIGMAS)
    if speed:
        reach = max(reach, 1.05 * family.params[speed] * max(times))
    profiles = []
    for sigma, t in zip(KERNEL_SIGMAS, times):
        x = np.linspace(0.0, reach, 500)
        atoms: tuple[tuple[float, float], ...] = ()
        if speed:
            front = family.params[speed] * t
            x = x[x < front * (1.0 - 1e-9)]  # the cone's inside; the atom sits on the front
            at_front = np.zeros((1, N))
            at_front[0, 0] = front
            atoms = ((front, float(reference.log_kernel(family, at_front, t)[0])),)
        d = np.zeros((len(x), N))
        d[:, 0] = x
        log_p = reference.log_kernel(family, d, t)
        label = f"t = {t:.4g} (sigma = {sigma:g})"
        profiles.append(KernelProfile(t, x, log_p, np.ones_like(log_p), label, atoms))
    where = "along a ray" if FAMILIES[family.name].isotropic else "per coordinate product, along the first axis"
    return profiles, f"{family.name} kernel in N = {N}, {where}"


def _one_dimensional_profiles(analysis) -> tuple[list[KernelProfile], str]:
    """The 1-D kernel by FFT of ghat, else its closed form (Riemann function with atoms at +-ct)."""
    from ..analysis import positivity

    disp, note = numeric_dispersion(analysis)
    spec = analysis.spec
    marginal = "1-D kernel" if spec.dim == 1 or spec.construction == "product" else \
        f"1-D marginal of the N = {spec.dim} kernel"
    kernels = [positivity.kernel_1d(disp, t) for t in KERNEL_TIMES_1D]
    if all(kernel is not None for kernel in kernels):
        return _fft_profiles(kernels), f"{marginal} (FFT of ghat){_title_suffix(note)}"
    riemann = positivity.riemann_kernel(disp)
    if riemann is None:
        probe = complex(positivity.normalised_transform(disp, np.ones(1), np.ones(1))[0, 0])
        if abs(probe.imag) > positivity.GHAT_ACCURACY:
            raise PlotSkipped(f"ghat is complex (ghat(k = 1, t = 1) = {probe:.4g}): the field is complex and "
                              "has no real density kernel to draw")
        raise PlotSkipped("ghat does not decay (a singular part) and the 1-D kernel has no closed form here")
    profiles = []
    for t in KERNEL_TIMES_1D:
        mass = disp.numeric_mass(t).real
        # A mass <= 0 (Klein-Gordon's cos(m t)) is itself a C1 failure: draw the kernel unnormalised then.
        scale = mass if mass > 0 else 1.0
        label = f"t = {t:g}" if mass > 0 else f"t = {t:g} (mass {mass:.3g} <= 0: not normalised)"
        x = np.linspace(0.0, riemann.c * t, 500, endpoint=False)
        p = riemann.continuous_part(x, t) / scale
        with np.errstate(divide="ignore"):
            log_abs = np.log(np.abs(p))
        atom = (riemann.c * t, math.log(riemann.atom_weight(t) / scale))
        profiles.append(KernelProfile(t, x, log_abs, np.sign(p), label, (atom,), _negative_minimum(x, p)))
    return profiles, f"{marginal} (closed form, atoms at |x| = c t){_title_suffix(note)}"


def fft_accuracy(kernel) -> float:
    """Below this |p| an FFT kernel value is not resolved: the analysis' error bound (3 x the k-truncation
    bound, plus round-off relative to p(0)); a negative value above it is a real negative lobe."""
    return 3.0 * kernel.truncation_error + FFT_FLOOR * abs(kernel.p_zero)


def _fft_profiles(kernels) -> list[KernelProfile]:
    """FFT kernels with unresolved values blanked, cut (on a common range) where all later values are."""
    reach = 0.0
    for kernel in kernels:
        resolved = np.flatnonzero(np.abs(kernel.p) > fft_accuracy(kernel))
        reach = max(reach, kernel.x[resolved[-1]] if len(resolved) else kernel.x[-1])
    profiles = []
    for kernel in kernels:
        keep = kernel.x <= reach
        x, p = kernel.x[keep], kernel.p[keep]
        unresolved = np.abs(p) <= fft_accuracy(kernel)
        with np.errstate(divide="ignore"):
            log_abs = np.where(unresolved, -np.inf, np.log(np.abs(p)))
        sign = np.where(unresolved, 0.0, np.sign(p))
        minimum = (kernel.x_min, kernel.p_min) if kernel.p_min < -fft_accuracy(kernel) else None
        profiles.append(KernelProfile(kernel.t, x, log_abs, sign, f"t = {kernel.t:g}", (), minimum))
    return profiles


def _negative_minimum(x: np.ndarray, p: np.ndarray) -> tuple[float, float] | None:
    i = int(np.argmin(p))
    return (float(x[i]), float(p[i])) if p[i] < 0 else None


# ---------------------------------------------------------------------------------------------- velocity
def time_grid(derivation, steps: int) -> np.ndarray:
    """EDM's noise grid (uniform in sigma^(1/rho), sigma_max -> sigma_min) mapped to times, t_max first."""
    from ..derive import reference

    rho = float(derivation.rho)
    ramp = np.linspace(0.0, 1.0, steps)
    top, bottom = float(derivation.sigma_max) ** (1 / rho), float(derivation.sigma_min) ** (1 / rho)
    sigmas = (top + ramp * (bottom - top)) ** rho
    return np.asarray(reference.t_of_sigma(derivation.family, sigmas), dtype=float)


def exact_flow(family, data: np.ndarray, x: np.ndarray, times: np.ndarray) -> np.ndarray:
    """RK4 of dx/dt = marginal_velocity(x, t) along ``times``: the path, shape (len(times), n, N)."""
    from ..derive import reference

    def velocity(points, t):
        return reference.marginal_velocity(family, points, float(t), data)

    path = [x]
    for t0, t1 in itertools.pairwise(times):
        h = t1 - t0
        k1 = velocity(x, t0)
        k2 = velocity(x + 0.5 * h * k1, t0 + 0.5 * h)
        k3 = velocity(x + 0.5 * h * k2, t0 + 0.5 * h)
        k4 = velocity(x + h * k3, t1)
        x = x + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        path.append(x)
    return np.stack(path)


def _plane_grid(n: int) -> np.ndarray:
    """n x n points of the square [-3, 3]^2, row by row, shape (n * n, 2)."""
    axis = np.linspace(-3.0, 3.0, n)
    gx, gy = np.meshgrid(axis, axis)
    return np.column_stack([gx.ravel(), gy.ravel()])


def plot_velocity(analysis, derivation, seed: int = 0):
    """N = 2: the exact marginal velocity of MIXTURE_2D at three times, and the exact flow from the prior."""
    from scipy import special

    from ..derive import reference

    family = _derived_family(analysis, derivation, "the velocity field")
    if analysis.spec.dim != 2:
        raise PlotSkipped(f"the velocity field is drawn in a plane: needs N = 2, got N = {analysis.spec.dim}")
    rng = np.random.default_rng(seed)
    figure, axes = _figure(VELOCITY_FIGURE_SIZE, columns=2, rows=2)
    panels = axes.ravel()
    points = _plane_grid(21)
    isotropic = reference.is_isotropic(family)  # (the Kac density mixes atoms and densities: no background)
    for ax, sigma, t in zip(panels[:3], VELOCITY_SIGMAS, _times_of_sigmas(family, VELOCITY_SIGMAS)):
        if isotropic:
            fine = _plane_grid(81)
            d = (fine[:, None, :] - MIXTURE_2D[None, :, :]).reshape(-1, 2)
            log_p = special.logsumexp(reference.log_kernel(family, d, t).reshape(len(fine), -1), axis=1)
            ax.contourf(fine[:, 0].reshape(81, 81), fine[:, 1].reshape(81, 81),
                        log_p.reshape(81, 81) / math.log(10), levels=12, cmap="Greys", alpha=0.45)
        v = reference.marginal_velocity(family, points, t, MIXTURE_2D)
        speed = np.linalg.norm(v, axis=1)
        # Unit arrows (direction), speed as colour: the speed spans decades between data and the edges.
        unit = v / np.maximum(speed, 1e-300)[:, None]
        ax.quiver(points[:, 0], points[:, 1], unit[:, 0], unit[:, 1], np.log10(np.maximum(speed, 1e-300)),
                  cmap="viridis", gid=f"velocity-{sigma:g}")
        background = "; grey: log p_t" if isotropic else ""
        ax.set_title(f"dx/dt at t = {t:.3g} (sigma = {sigma:g}): direction, colour log10 speed{background}",
                     fontsize=9)

    times = time_grid(derivation, FLOW_STEPS)
    sources = MIXTURE_2D[rng.integers(len(MIXTURE_2D), size=TRAJECTORIES)]
    start = sources + reference.sample(family, times[0], TRAJECTORIES, 2, rng)[0]
    path = exact_flow(family, MIXTURE_2D, start, times)
    flow_ax = panels[3]
    for i in range(TRAJECTORIES):
        flow_ax.plot(path[:, i, 0], path[:, i, 1], color="tab:blue", lw=0.8, alpha=0.7,
                     gid="trajectory", label="exact flow from the prior" if i == 0 else None)
    flow_ax.plot(path[-1, :, 0], path[-1, :, 1], "o", ms=4, color="tab:orange", gid="trajectory-end",
                 zorder=3,                  label=f"end points at t_min = {times[-1]:.3g}")
    flow_ax.set_title(f"exact flow integrated from t_max = {times[0]:.3g} to t_min (RK4, {FLOW_STEPS} EDM "
                      "steps)", fontsize=9)
    for ax in panels:
        ax.plot(MIXTURE_2D[:, 0], MIXTURE_2D[:, 1], "*", ms=12, color="tab:red", markeredgecolor="black",
                label="data (4 points)", gid="data")
        ax.set_xlim(-3.0, 3.0)
        ax.set_ylim(-3.0, 3.0)
        ax.set_aspect("equal")
        ax.legend(fontsize=7, loc="lower right")
    figure.suptitle(f"exact velocity of {analysis.spec.pretty()} ({family.name}) for a 4-point mixture",
                    fontsize=11)
    return figure


# ---------------------------------------------------------------------------------------------- prior
def mixture_in(dim: int) -> np.ndarray:
    """MIXTURE_2D placed in the first coordinates of R^dim (its first coordinate only when dim = 1)."""
    data = np.zeros((len(MIXTURE_2D), dim))
    data[:, : min(dim, 2)] = MIXTURE_2D[:, : min(dim, 2)]
    return data


def plot_prior(analysis, derivation, seed: int = 0):
    """The prior (kernel at t_max) against the marginal at t_max, as densities of log10 |x|."""
    from scipy import stats

    from ..derive import reference

    family = _derived_family(analysis, derivation, "the prior")
    N = analysis.spec.dim
    t_max = float(derivation.t_max)
    rng = np.random.default_rng(seed)
    n = max(1000, min(PRIOR_DRAWS, MAX_PRIOR_FLOATS // N))
    data = mixture_in(N)
    displacement = reference.sample(family, t_max, n, N, rng)[0]
    marginal = np.linalg.norm(data[rng.integers(len(data), size=n)] + displacement, axis=1)
    log_radius = np.log10(marginal)

    figure, axes = _figure(columns=1)
    ax = axes[0, 0]
    bins = np.linspace(*np.quantile(log_radius, [0.001, 0.999]), 60)
    ax.hist(log_radius, bins=bins, density=True, color="tab:orange", alpha=0.55, gid="marginal-histogram",
            label=f"marginal at t_max: data + kernel, {n} draws")
    u = np.linspace(bins[0], bins[-1], 400)
    if reference.is_isotropic(family):
        # density of u = log10 |x| under the prior: |S^{N-1}| r^{N-1} p(r) * r ln 10
        r = 10.0**u
        d = np.zeros((len(r), N))
        d[:, 0] = r
        log_area = math.log(2.0) + 0.5 * N * math.log(math.pi) - math.lgamma(0.5 * N)
        log_kernel = reference.log_kernel(family, d, t_max)
        log_density = log_area + N * np.log(r) + log_kernel + math.log(math.log(10.0))
        ax.plot(u, np.exp(log_density), color="tab:blue", lw=2, gid="prior-density",
                label="prior: kernel at t_max (exact)")
        distance = stats.kstest(marginal, lambda rho: reference.radial_cdf(family, rho, t_max, N)).statistic
    else:
        prior = np.linalg.norm(reference.sample(family, t_max, n, N, rng)[0], axis=1)
        ax.hist(np.log10(prior), bins=bins, density=True, histtype="step", lw=2, color="tab:blue",
                gid="prior-density", label=f"prior: kernel at t_max, {n} independent draws")
        distance = stats.ks_2samp(marginal, prior).statistic
    ax.set_xlabel("log10 |x|")
    ax.set_ylabel("density")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    sigma_max = float(derivation.sigma_max)
    ax.set_title(f"prior vs marginal at t_max = {t_max:.4g} (sigma = {sigma_max:g}), N = {N}: "
                 f"Kolmogorov-Smirnov distance of |x| = {distance:.3g}", fontsize=10)
    figure.ks_distance = float(distance)  # the number the title states, for tests and callers
    return figure


# ---------------------------------------------------------------------------------------------- all
PLOTS = ("dispersion", "kernel", "velocity", "prior")


def iter_plots(analysis, derivation=None, *, seed: int = 0):
    """(name, Figure or the PlotSkipped reason) for every plot of PLOTS, each made when asked for."""
    makers = {
        "dispersion": lambda: plot_dispersion(analysis),
        "kernel": lambda: plot_kernel(analysis, derivation),
        "velocity": lambda: plot_velocity(analysis, derivation, seed=seed),
        "prior": lambda: plot_prior(analysis, derivation, seed=seed),
    }
    for name in PLOTS:
        try:
            yield name, makers[name]()
        except PlotSkipped as skipped:
            yield name, str(skipped)


def make_plots(analysis, derivation=None, *, seed: int = 0) -> dict[str, object]:
    """{name: Figure or the PlotSkipped reason (str)} for every plot of PLOTS."""
    return dict(iter_plots(analysis, derivation, seed=seed))


def write_plots(analysis, derivation, outdir, *, seed: int = 0) -> tuple[PlotOutcome, ...]:
    """Save every plot that makes sense as OUTDIR/<name>.png (each as soon as it is made, so that a failure
    in a later one keeps the earlier files); the others are skipped with the reason."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for name, made in iter_plots(analysis, derivation, seed=seed):
        if isinstance(made, str):
            outcomes.append(PlotOutcome(name, None, made))
            continue
        path = outdir / f"{name}.png"
        made.savefig(path, dpi=DPI)
        outcomes.append(PlotOutcome(name, path))
    return tuple(outcomes)


__all__ = ["PLOTS", "PlotOutcome", "PlotSkipped", "iter_plots", "make_plots", "plot_dispersion",
           "plot_kernel", "plot_prior", "plot_velocity", "write_plots"]
