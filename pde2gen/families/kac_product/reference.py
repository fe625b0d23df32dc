"""NumPy/SciPy float64 reference twin of the kac_product family: Product of N independent 1-D Kac laws
(physics.md §4.5), with atoms of mass e^{-a t}/2 at +-c t.

An implementation independent of the torch runtime (runtime.py), reached through ``pde2gen.derive.reference``."""
from __future__ import annotations

import math

import numpy as np
from scipy import optimize, special

from ..reference_common import ReferenceFamily, as_times

# A Kac coordinate within this relative distance of the light cone |d| = c t is on an atom (marginal_velocity
# adds the rounding of x and of d = x - y, 2 eps (|x| + |y|) per coordinate).
KAC_ATOM_TOLERANCE = 1e-12
# Where a point is off every data point's support (a discrete flow pushed a coordinate over the cones), the
# marginal velocity scores data points by their distance to the fronts, as normal bumps of this width
# relative to c t (the atom width of the torch runtime, runtime.py).
KAC_FALLBACK_WIDTH = 1e-4
# t_of_sigma: beyond this q = 2 a lag, x = 2 a t solves x + expm1(-x) = q as q + 1 - e^{-(q + 1)} (error < e^{-42})
KAC_CLOSED_ROOT_MIN = 20.0
# sample: rows with a t above this draw x / (c t) from the switch count's closed-form mixture (_count_free_position):
# numpy's Poisson refuses a t > 9.2e18 ('pde2gen build kac --param a=9e9': a t = 5.8e22 at sigma = 80), and a Beta
# of shapes ~ a t / 2 leaves 2B - 1 only ~ eps sqrt(a t) relative precision
KAC_COUNT_FREE_MIN_RATE = 1e9


class Reference(ReferenceFamily):
    """N independent 1-D Kac coordinates (physics.md §4.5); latent: atom signs (+-1 on an atom, else 0)."""

    isotropic = False

    def check_times(self):
        """Where the atoms carry e^{-1/2} and e^{-3} of each coordinate."""
        return [0.5 / self.a, 3.0 / self.a]

    def sample(self, t, n, N, rng):
        t = t[:, None]
        counted = self.a * t <= KAC_COUNT_FREE_MIN_RATE
        flips = rng.poisson(np.where(counted, self.a * t, 0.0), size=(n, N))
        direction = np.where(rng.random((n, N)) < 0.5, -1.0, 1.0)
        # Time spent in the initial direction: the n + 1 segments are Dirichlet(1, ..., 1).
        ones = np.maximum(flips, 1)
        forward = rng.beta(np.ceil((ones + 1) / 2), np.floor((ones + 1) / 2))
        d = np.where(flips == 0, direction * self.c * t, direction * self.c * t * (2.0 * forward - 1.0))
        atoms = np.where(counted & (flips == 0), direction, 0.0)
        if not counted.all():
            rows = ~counted[:, 0]
            d[rows] = self.c * t[rows] * self._count_free_position(self.a * t[rows], N, rng)
        return d, atoms

    @staticmethod
    def _count_free_position(rate, N, rng):
        """x / (c t) of rows (R, N) with a t = ``rate`` (R, 1) > KAC_COUNT_FREE_MIN_RATE, without a switch count.
        Given n >= 1 switches x / (c t) is symmetric Beta(q, q) in [-1, 1], q = ceil(n / 2), which is Ulrich's
        sqrt(1 - R^2) cos(pi V), R = U^(1 / (2q - 1)), V uniform. Mixed over n ~ Poisson(a t) (n = 0: R = 0, the
        atoms), P(R <= y) = e^{-a t} [1 + sinh(a t y) + (cosh(a t y) - 1) / y] (odd n: sinh, even n: cosh), which
        is e^{-a t (1 - y)} (1 + 1/y) / 2 up to e^{-a t} / y; every float64 uniform (-log U <= 37) puts R above
        1/2 from a t = 100, where that term, relative e^{-a t y}, and the atoms are below e^{-a t / 2}: nothing in
        float64 relative to one (a t > 74). So
        v = 1 - R solves a t v - log1p(v / (2 (1 - v))) = E, E = -log U: the fixed point of
        v = (E + log1p(v / (2 (1 - v)))) / (a t), a contraction by ~1 / (2 a t) per step (three steps from
        E / (a t - 1/2), whose error is ~ (E / a t)^2, leave < 1e-40 of v)."""
        exponential = -np.log1p(-rng.random((rate.shape[0], N)))
        v = exponential / (rate - 0.5)
        for _ in range(3):
            v = (exponential + np.log1p(v / (2.0 * (1.0 - v)))) / rate
        return np.sqrt(v * (2.0 - v)) * np.cos(math.pi * rng.random((rate.shape[0], N)))

    def _cone(self, d, t, slack=0.0):
        """Per coordinate: (atom sign, outside) with atom sign +-1 on an atom (within KAC_ATOM_TOLERANCE c t
        + slack of the light cone |d| = c t), else 0; outside: beyond the cone and off the atoms (the kernel
        is zero there)."""
        front = self.c * t[:, None]
        tolerance = KAC_ATOM_TOLERANCE * front + slack
        excess = np.abs(d) - front
        atoms = np.where(np.abs(excess) <= tolerance, np.sign(d), 0.0)
        return atoms, excess > tolerance

    def transport_start(self, d, t_from, t_to, latent):
        """Atoms move at +-c; backwards in time an a.c. coordinate that the cone overtakes joins the atom (the
        mass the atoms leak forwards), so only transport towards the data is exact."""
        if t_to > t_from:
            raise ValueError("kac_product: the coupling is transported towards the data only (atoms)")
        # a coordinate beyond the cone joins its atom at once (as in transport_step_end)
        return self._front_signs(d, as_times(t_from, len(d))) if latent is None else np.asarray(latent, dtype=float)

    def transport_step_end(self, d, state, time):
        front = self.c * time
        joined = (state == 0) & (np.abs(d) >= front)
        state = np.where(joined, np.sign(d), state)
        return np.where(state != 0, state * front, d), state

    def _front_signs(self, d, t):
        """Per coordinate sign(d) where it moves with the front at speed c (on an atom or beyond the cone),
        else 0: the latent of the posterior-mean velocity."""
        atoms, outside = self._cone(d, t)
        return np.where(outside, np.sign(d), atoms)

    def _log_terms(self, d, t, slack=0.0):
        """Per coordinate log(a.c. density) inside the cone, log(e^{-a t}/2) on the atoms, -inf outside; with
        the atom signs and the outside mask of ``_cone``."""
        t2 = t[:, None]
        atoms, outside = self._cone(d, t, slack)
        inside = (atoms == 0) & ~outside
        r = np.sqrt(np.clip((self.c * t2) ** 2 - d * d, 0.0, None))
        z = self.a * r / self.c
        safe_z = np.where(z > 0, z, 1.0)
        # I_1(z)/z -> 1/2 as z -> 0 (the front value (a e^{-at}/2c)(1 + a t/2)).
        i1_over_z = np.where(z > 1e-150, special.i1e(safe_z) / safe_z, 0.5 * np.exp(-z))
        continuous = (math.log(self.a / (2.0 * self.c)) - self.a * t2 + z
                      + np.log(special.i0e(z) + self.a * t2 * i1_over_z))
        atom = math.log(0.5) - self.a * t2
        per_coordinate = np.where(inside, continuous, np.where(outside, -np.inf, atom))
        return per_coordinate, atoms, outside

    def log_kernel(self, d, t):
        """Sum over coordinates of log(a.c. density) inside the cone, log(e^{-a t}/2) on the atoms (a mass, not
        a density: see ``posterior_terms``) and -inf outside the cone."""
        return np.sum(self._log_terms(d, t)[0], axis=1)

    def posterior_terms(self, d, t, slack):
        """(rank, log weight, velocity) of each displacement d = x - y_j for posterior weights over data points.

        The law of x is a sum over data points of products of atoms (Dirac masses) and densities, so a point
        on k atoms lies on a k-codimensional face of the support: given x, only the data points that put x on
        the most atoms count (each atom is infinitely more likely than a density there), weighted by their
        product of masses e^{-a t}/2 and a.c. densities.  Rank: that number of atoms; -1 off the support
        (a coordinate outside its cone), where the log weight scores the distance to the fronts instead,
        -(|d| - c t)^2 / (2 w^2), w = KAC_FALLBACK_WIDTH c t, as the torch runtime's regularised atoms do (it
        only matters where x is off every data point's support).  Velocity: ``conditional_velocity`` without a
        latent, with the same atoms (c d / (c t) on them and beyond the cone)."""
        terms, atoms, outside = self._log_terms(d, t, slack)
        singular = (atoms != 0) | outside
        rank = np.where(outside.any(axis=1), -1, np.sum(atoms != 0, axis=1))
        exact = np.sum(terms, axis=1)
        front = self.c * t[:, None]
        width = KAC_FALLBACK_WIDTH * front
        excess = np.maximum(np.abs(d) - front, 0.0) / width
        atom = math.log(0.5) - self.a * t[:, None] - np.log(math.sqrt(2.0 * math.pi) * width)
        bumps = np.where(singular, atom - 0.5 * excess**2, terms)
        log_w = np.where(rank >= 0, exact, np.sum(bumps, axis=1))
        return rank, log_w, self.conditional_velocity(d, t, None, np.where(outside, np.sign(d), atoms))

    def characteristic_function(self, k, t):
        return np.prod(self._cf_1d(np.asarray(k, dtype=float), np.asarray(t, dtype=float)[..., None]), axis=-1)

    def _cf_1d(self, k, t):
        """e^{-a t}[cosh(t W) + a sinh(t W)/W], W = sqrt(a^2 - c^2 k^2) (entire in W^2: no 0/0, no NaN). The slow
        branch W - a is written -c^2 k^2 / (a + W): a - W cancels for c k << a, and t (W - a) with it (a = 100, c = 1
        at t = 1.6e5 was off by 1.7e-9)."""
        W = np.sqrt((self.a**2 - (self.c * k) ** 2).astype(complex))
        grow = np.exp(-t * (self.c * k) ** 2 / (self.a + W))
        decay = np.exp(-t * (W + self.a))
        tW = t * W
        small = np.abs(tW) < 1e-3
        safe = np.where(small, 1.0, tW)
        sinhc = np.where(small, np.exp(-self.a * t) * (1.0 + tW**2 / 6.0 + tW**4 / 120.0),
                         (grow - decay) / (2.0 * safe))
        return ((grow + decay) / 2.0 + self.a * t * sinhc).real

    def conditional_velocity(self, d, t, latent, front_signs=None):
        """d / (t + (r/c) I0(z)/I1(z)) inside the cone; +-c on the atoms of ``latent`` (training targets, |v| <= c).
        Without a latent, a coordinate on an atom or beyond the cone (``front_signs`` != 0, default ``_front_signs``)
        moves with its share of the front, c d / (c t): +-c on it, and a coordinate that a discrete reverse step
        pushed over the cone is pulled back in proportion (as the torch runtime)."""
        if latent is None:
            signs = self._front_signs(d, t) if front_signs is None else front_signs
            inside = self.conditional_velocity(d, t, np.zeros_like(d))
            return np.where(signs != 0, self.c * d / (self.c * t[:, None]), inside)
        atoms = np.asarray(latent, dtype=float)
        t2 = t[:, None]
        r = np.sqrt(np.clip((self.c * t2) ** 2 - d * d, 0.0, None))
        z = self.a * r / self.c
        safe_z = np.where(z > 0, z, 1.0)
        # (r/c) I0(z)/I1(z) = (z I0(z)/I1(z)) / a, with z I0/I1 -> 2 at the front.
        ratio = np.where(z > 1e-8, safe_z * special.i0e(safe_z) / special.i1e(safe_z), 2.0 + z * z / 4.0)
        inside = d / (t2 + ratio / self.a)
        return np.where(atoms != 0, atoms * self.c, inside)

    def sigma(self, t):
        t = np.asarray(t, dtype=float)
        return np.sqrt(self.c**2 / self.a * self._lag(t))

    def _lag(self, t):
        """t - (1 - e^{-2 a t}) / (2 a), without cancellation at small a t."""
        x = 2.0 * self.a * t
        series = x * x / 2.0 - x**3 / 6.0 + x**4 / 24.0 - x**5 / 120.0
        return np.where(x < 1e-3, series, special.expm1(-x) + x) / (2.0 * self.a)

    def t_of_sigma(self, sigma):
        sigma = np.asarray(sigma, dtype=float)
        target = sigma**2 * self.a / self.c**2

        def solve(value):
            # in x = 2 a t: g(x) = x + expm1(-x) = q, q = 2 a value. Beyond q = KAC_CLOSED_ROOT_MIN the root is
            # x = q + 1 - e^{-x}, one fixed-point step from q + 1 (error e^{-2(q+1)}): a bracket [., value + 1/a]
            # in t lost its 1/a to rounding there (c = 3e-9: value = 6.4e21, a = 9) and brentq saw no sign change.
            q = 2.0 * self.a * value
            if q <= 0:
                return 0.0
            if q > KAC_CLOSED_ROOT_MIN:
                return (q + 1.0 - math.exp(-(q + 1.0))) / (2.0 * self.a)
            # x^2/2 - x^3/6 <= g(x) <= x^2/2 and g(x) > x - 1: the root lies in [sqrt(q / 2), q + 2]
            x = optimize.brentq(lambda x: 2.0 * self.a * float(self._lag(np.array(x / (2.0 * self.a)))) - q,
                                math.sqrt(0.5 * q), q + 2.0, xtol=1e-300, rtol=1e-15)
            return x / (2.0 * self.a)

        return np.vectorize(solve, otypes=[float])(target)

    def mean_square_radius(self, t, N):
        return N * float(self.sigma(t)) ** 2

    def atom_probability(self, t):
        """e^{-a t}: the probability that a coordinate sits on an atom (+-c t)."""
        return np.exp(-self.a * t)

    def continuous_cdf(self, x, t: float):
        """CDF of one coordinate conditioned off the atoms (the a.c. part normalised by 1 - e^{-a t})."""
        front = self.c * t
        grid = np.linspace(-front, front, 20001)
        inner = grid.copy()
        inner[[0, -1]] *= 1.0 - 2.0 * KAC_ATOM_TOLERANCE  # the front values, not the atoms
        density = np.exp(self.log_kernel(inner[:, None], np.full(len(grid), t)))
        cumulative = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(grid))])
        return np.interp(x, grid, cumulative / (1.0 - math.exp(-self.a * t)))
