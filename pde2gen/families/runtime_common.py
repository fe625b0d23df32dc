"""Shared helpers of the pde2gen torch runtime: random draws that honour a ``torch.Generator``, exact
Gamma and Poisson samplers, special functions with gradients, and log-space quadrature.

How the runtime is assembled (the renderer and the tests rely on this):
- ``pde2gen/families/runtime_common.py`` (this file) and ``pde2gen/families/<family>/runtime.py`` are plain
  Python modules that tests import (``pde2gen.families.<family>.runtime``); the compiler itself never imports
  them (the renderer reads them as text, so the compiler core does not need torch).
- A generated ``process.py`` inlines this file followed by the family's ``runtime.py``; every line ending
  with the marker comment ``# runtime-import`` is dropped on the way. Family files therefore import only
  from this module (``from pde2gen.families.runtime_common import squared_norm  # runtime-import``) and
  import ``math``/``torch`` with the marker too, since this file already imports them at its top.
- No ``from __future__`` import anywhere (it would land mid-file once inlined); dependencies: torch only.

Conventions: a batch of times ``t`` has shape (B,); displacements ``d`` have shape (B, *shape); results
live on ``t``'s device in ``t``'s dtype. Per-sample scalars that need the range or precision (mixing
variables, quadrature) are computed in float64; full (B, N) tensors stay in the working dtype.
"""
import math

import torch

# --------------------------------------------------------------------------------------------------
# shapes


def batch_view(values, like):
    """(B,) -> (B, 1, ..., 1), broadcastable against ``like`` of shape (B, *shape)."""
    return values.reshape(values.shape[0], *([1] * (like.dim() - 1)))


def event_size(d):
    """Number of coordinates per sample, N = prod(shape)."""
    return math.prod(d.shape[1:])


def squared_norm(d):
    """Per-sample squared Euclidean norm: (B, *shape) -> (B,)."""
    return d.reshape(d.shape[0], -1).square().sum(-1)


# --------------------------------------------------------------------------------------------------
# random draws: on the generator's device (a CPU generator may serve CUDA tensors), then moved


def _draw_device(device, generator):
    return device if generator is None else generator.device


def standard_normal(shape, dtype, device, generator=None):
    """N(0, 1) draws of ``shape``."""
    draw = torch.randn(shape, dtype=dtype, device=_draw_device(device, generator), generator=generator)
    return draw.to(device)


def uniform_open(shape, dtype, device, generator=None):
    """U(0, 1) draws strictly inside (0, 1).

    ``torch.rand`` returns multiples of eps/2 in [0, 1 - eps/2]; the single value 0 is mapped to eps/4 so
    that logarithms and reciprocals stay finite.
    """
    draw = torch.rand(shape, dtype=dtype, device=_draw_device(device, generator), generator=generator)
    return draw.clamp_min_(torch.finfo(dtype).eps / 4).to(device)


def random_bits31(shape, device, generator=None):
    """int32 draws uniform on [0, 2**31): the cheapest source of randomness on CPU (about half the cost of a
    ``torch.rand`` draw), split into bit fields by the samplers that need speed."""
    draw = torch.empty(shape, dtype=torch.int32, device=_draw_device(device, generator))
    return draw.random_(generator=generator).to(device)


# --------------------------------------------------------------------------------------------------
# Gamma: Marsaglia & Tsang (2000), with the boost Gamma(a) = Gamma(a + 1) U^(1/a) for a < 1


def sample_gamma(concentration, generator=None):
    """Gamma(concentration, 1) draws in float64, one per element of ``concentration`` (any shape, > 0).

    Rejection sampling on the pending elements only; the loop ends when every draw is accepted
    (acceptance >= 0.95 per round for shape >= 1). For shapes < 1 the boost U^(1/a) is applied through
    logarithms, so tiny shapes underflow only where float64 itself does.
    """
    device = concentration.device
    alpha = concentration.to(torch.float64).reshape(-1)
    boosted = alpha < 1
    shape = torch.where(boosted, alpha + 1, alpha)
    d = shape - 1.0 / 3.0
    c = torch.rsqrt(9.0 * d)
    draws = torch.empty_like(alpha)
    pending = torch.arange(alpha.numel(), device=device)
    while pending.numel() > 0:
        dp, cp = d[pending], c[pending]
        x = standard_normal(pending.shape, torch.float64, device, generator)
        u = uniform_open(pending.shape, torch.float64, device, generator)
        v = (1 + cp * x) ** 3
        log_v = torch.log(v.clamp_min(torch.finfo(torch.float64).tiny))
        accepted = (v > 0) & (torch.log(u) < 0.5 * x * x + dp - dp * v + dp * log_v)
        draws[pending[accepted]] = (dp * v)[accepted]
        pending = pending[~accepted]
    boost = uniform_open(alpha.shape, torch.float64, device, generator)
    log_draws = torch.log(draws) + torch.where(boosted, torch.log(boost) / alpha, torch.zeros_like(alpha))
    return torch.exp(log_draws).reshape(concentration.shape)


# --------------------------------------------------------------------------------------------------
# Inverse Gaussian: Michael, Schucany & Haas (1976), in a cancellation-free form


def sample_inverse_gaussian(tau, m, generator=None):
    """X ~ InverseGaussian(mean tau / m, shape tau^2) per element of ``tau`` (float64; ``m`` >= 0 a float).

    With y = Z^2 and p = 2 m tau / y, the smaller root of the MSH quadratic is
    x = (2 tau^2 / y) / (1 + p + sqrt(1 + 2 p)) (finite at m = 0, where x = tau^2 / Z^2, the Levy law);
    accept x with probability mu / (mu + x) = tau / (tau + m x), otherwise return mu^2 / x = tau^2 / (m^2 x).
    """
    tau = tau.to(torch.float64)
    y = standard_normal(tau.shape, torch.float64, tau.device, generator).square().clamp_min(1e-300)
    p = 2 * m * tau / y
    x = (2 * tau.square() / y) / (1 + p + torch.sqrt(1 + 2 * p))
    if m == 0:
        return x
    u = uniform_open(tau.shape, torch.float64, tau.device, generator)
    return torch.where(u * (tau + m * x) <= tau, x, tau.square() / (m * m * x))


# --------------------------------------------------------------------------------------------------
# Poisson: exact inversion through per-rate CDF tables over a window of counts, PTRS for huge rates

POISSON_TABLE_MAX_RATE = 1e4  # sample_poisson: tables (about 26 sqrt(rate) entries per rate) up to here, PTRS above
POISSON_BUCKET_BITS = 10  # sample_poisson: U's leading bits pick one of 2**10 buckets; most hold a single count


def poisson_window(rate):
    """Counts start .. start + size - 1 that hold all of Poisson(rate)'s mass but < 1e-36 on either side (13
    standard deviations plus a margin; Chernoff bounds): ``start`` (R,) int64, ``size`` a Python int (max over R)."""
    rate = rate.to(torch.float64)
    spread = 13.0 * torch.sqrt(rate)
    start = torch.floor((rate - spread - 10.0).clamp_min(0.0))
    stop = torch.ceil(rate + spread + 30.0)
    return start.long(), int((stop - start).max()) + 1 if rate.numel() else 1


def poisson_cdf(rate, start, size):
    """F(k) = P(Poisson(rate) <= k) for k = start .. start + size - 1 (float64, shape (R, size)), with the window
    normalised to 1 (the mass outside it, < 1e-36, is dropped). The pmf ratios come from the recurrence
    p(k) / p(k-1) = rate / k summed in log space (error ~1e-16 sqrt(size) |log rate|, e.g. 1e-13 at rate 1e6,
    where lgamma(k) itself would carry 1e-9), and normalising removes the common factor p(start)."""
    rate = rate.to(torch.float64).unsqueeze(-1)
    k = (start.unsqueeze(-1) + torch.arange(1, size, device=rate.device)).to(torch.float64)
    log_ratio = torch.cat([torch.zeros_like(rate), (torch.log(rate) - torch.log(k)).cumsum(-1)], -1)
    pmf = torch.exp(log_ratio - log_ratio.max(-1, keepdim=True).values)
    cdf = pmf.cumsum(-1)
    return cdf / cdf[:, -1:]


def poisson_bucket_counts(cdf, buckets):
    """For U uniform in bucket j = [j/M, (j+1)/M), the Poisson count n = #{k: F(k) <= U} lies in
    [low_j, high_j] (a single count where low_j == high_j); returns (low, high), shapes (R, M), M = ``buckets``.

    low_j = #{k: M F(k) <= j} = #{k: ceil(M F(k)) <= j}, high_j = #{k: M F(k) < j+1} = #{k: floor(M F(k)) <= j}:
    two histograms and a cumulative sum, exact in the float64 values of F.
    """
    rows = cdf.shape[0]
    scaled = cdf * buckets
    ones = torch.ones_like(scaled, dtype=torch.float32)  # counts < 2^24: exact in float32 (fast cumsum)

    def count_at_most(edge_index):
        histogram = torch.zeros(rows, buckets + 1, dtype=torch.float32, device=cdf.device)
        histogram.scatter_add_(1, edge_index.clamp_max(buckets).to(torch.int64), ones)
        return histogram.cumsum_(-1)[:, :buckets].to(torch.int64)

    return count_at_most(torch.ceil(scaled)), count_at_most(torch.floor(scaled))


def poisson_search(cdf, row, first, last, u):
    """Exact inversion n = #{k: F_row(k) <= u} (a table index, relative to the table's first count) for single
    elements whose n is known to lie in [first, last]: vectorised bisection on the CDF table (R, K), as many
    steps as the widest bracket needs."""
    flat, size = cdf.reshape(-1), cdf.shape[-1]
    low, high = first.clone(), last.clone()  # invariant: F(low - 1) <= u < F(high)
    row_start = row * size
    for _ in range(int(high.sub(low).max()).bit_length() if u.numel() else 0):
        middle = (low + high) >> 1  # counts >= 0: the floor of the mean (int64 division is slow on CPU)
        above = flat.index_select(0, row_start + middle) > u
        high = torch.where(above, middle, high)
        low = torch.where(above, low, middle + 1)
    return low


def sample_poisson_ptrs(rate, generator=None):
    """Poisson(rate) draws (float64 counts, same shape as ``rate``) by Hörmann's transformed rejection
    with squeeze (PTRS, 1993), exact for rate >= 10; the loop runs until every draw is accepted."""
    device = rate.device
    lam = rate.to(torch.float64).reshape(-1)
    log_lam = torch.log(lam)
    b = 0.931 + 2.53 * torch.sqrt(lam)
    a = -0.059 + 0.02483 * b
    log_inv_alpha = torch.log(1.1239 + 1.1328 / (b - 3.4))
    v_r = 0.9277 - 3.6224 / (b - 2)
    counts = torch.empty_like(lam)
    pending = torch.arange(lam.numel(), device=device)
    while pending.numel() > 0:
        lp, ap, bp = lam[pending], a[pending], b[pending]
        u = uniform_open(pending.shape, torch.float64, device, generator) - 0.5
        v = uniform_open(pending.shape, torch.float64, device, generator)
        us = 0.5 - u.abs()
        k = torch.floor((2 * ap / us + bp) * u + lp + 0.43)
        squeeze = (us >= 0.07) & (v <= v_r[pending])
        log_ratio = torch.log(v) + log_inv_alpha[pending] - torch.log(ap / (us * us) + bp)
        exact = (k >= 0) & ~((us < 0.013) & (v > us)) & (log_ratio <= -lp + k * log_lam[pending] - torch.lgamma(k + 1))
        accepted = squeeze | exact
        counts[pending[accepted]] = k[accepted]
        pending = pending[~accepted]
    return counts.reshape(rate.shape)


def sample_poisson(rate, num, generator=None):
    """``num`` independent Poisson(rate_i) counts per rate: (R,) -> (R, num) int64, exact.

    Rates <= POISSON_TABLE_MAX_RATE: inversion of a float64 uniform through the rate's CDF table (bucket
    lookup, then a short exact search for the few buckets that hold several counts); larger rates: PTRS.
    """
    device = rate.device
    rate = rate.to(torch.float64)
    counts = torch.empty(rate.shape[0], num, dtype=torch.int64, device=device)
    tabled = rate <= POISSON_TABLE_MAX_RATE
    if tabled.any():
        rows = tabled.nonzero().squeeze(-1)
        start, size = poisson_window(rate[rows])
        buckets = 2**POISSON_BUCKET_BITS
        cdf = poisson_cdf(rate[rows], start, size)
        low, high = poisson_bucket_counts(cdf, buckets)
        u = uniform_open((rows.numel(), num), torch.float64, device, generator)
        bucket = (u * buckets).long()
        drawn = low.gather(1, bucket)
        last = high.gather(1, bucket)
        mixed = (last > drawn).nonzero(as_tuple=True)
        drawn[mixed] = poisson_search(cdf, mixed[0], drawn[mixed], last[mixed], u[mixed])
        counts[rows] = drawn + start.unsqueeze(-1)
    if not tabled.all():
        rows = (~tabled).nonzero().squeeze(-1)
        counts[rows] = sample_poisson_ptrs(rate[rows].unsqueeze(-1).expand(-1, num), generator).long()
    return counts


# --------------------------------------------------------------------------------------------------
# special functions with gradients
#
# torch 2.13's modified_bessel_k0/k1 and scaled_modified_bessel_k0/k1 return results without grad_fn
# (silently non-differentiable); these Functions add backward (built from each other, so higher
# derivatives work), forward-mode jvp and a generated vmap rule. i0/i0e/i1/i1e differentiate natively.


class _BesselK0(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return torch.special.modified_bessel_k0(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])
        ctx.save_for_forward(inputs[0])

    @staticmethod
    def backward(ctx, grad):  # K0' = -K1
        (x,) = ctx.saved_tensors
        return -grad * bessel_k1(x)

    @staticmethod
    def jvp(ctx, x_tangent):
        (x,) = ctx.saved_tensors
        return -x_tangent * bessel_k1(x)


class _BesselK1(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return torch.special.modified_bessel_k1(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])
        ctx.save_for_forward(inputs[0])

    @staticmethod
    def _derivative(x):  # K1' = -K0 - K1/x
        return -bessel_k0(x) - bessel_k1(x) / x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * _BesselK1._derivative(x)

    @staticmethod
    def jvp(ctx, x_tangent):
        (x,) = ctx.saved_tensors
        return x_tangent * _BesselK1._derivative(x)


class _BesselK0e(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return torch.special.scaled_modified_bessel_k0(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])
        ctx.save_for_forward(inputs[0])

    @staticmethod
    def _derivative(x):  # (e^x K0)' = e^x K0 - e^x K1
        return bessel_k0e(x) - bessel_k1e(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * _BesselK0e._derivative(x)

    @staticmethod
    def jvp(ctx, x_tangent):
        (x,) = ctx.saved_tensors
        return x_tangent * _BesselK0e._derivative(x)


class _BesselK1e(torch.autograd.Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return torch.special.scaled_modified_bessel_k1(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])
        ctx.save_for_forward(inputs[0])

    @staticmethod
    def _derivative(x):  # (e^x K1)' = e^x K1 (1 - 1/x) - e^x K0
        return bessel_k1e(x) * (1 - 1 / x) - bessel_k0e(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * _BesselK1e._derivative(x)

    @staticmethod
    def jvp(ctx, x_tangent):
        (x,) = ctx.saved_tensors
        return x_tangent * _BesselK1e._derivative(x)


def bessel_k0(x):
    """K_0(x), differentiable."""
    return _BesselK0.apply(x)


def bessel_k1(x):
    """K_1(x), differentiable."""
    return _BesselK1.apply(x)


def bessel_k0e(x):
    """e^x K_0(x), differentiable."""
    return _BesselK0e.apply(x)


def bessel_k1e(x):
    """e^x K_1(x), differentiable."""
    return _BesselK1e.apply(x)


def i1e_over_x(x):
    """e^-x I_1(x) / x for x >= 0, smooth through x = 0 (value 1/2): a series below 1e-2 (error < 1e-20),
    with the double-where trick so that gradients stay finite at 0."""
    small = x < 1e-2
    x_safe = torch.where(small, torch.ones_like(x), x)
    x2 = x * x
    series = torch.exp(-x) * (0.5 + x2 * (1.0 / 16 + x2 * (1.0 / 384 + x2 / 18432)))
    return torch.where(small, series, torch.special.i1e(x_safe) / x_safe)


def _debye_polynomials(count):
    """Coefficients (in p) of the Debye polynomials u_0..u_{count-1} (DLMF 10.41.10), exact rationals:
    u_{k+1}(p) = p^2 (1 - p^2) u_k'(p) / 2 + (1/8) int_0^p (1 - 5 s^2) u_k(s) ds."""
    from fractions import Fraction

    polynomials = [[Fraction(1)]]
    for _ in range(count - 1):
        u = polynomials[-1]
        nxt = [Fraction(0)] * (len(u) + 3)
        for j, coefficient in enumerate(u):
            if j > 0:
                nxt[j + 1] += j * coefficient / 2
                nxt[j + 3] -= j * coefficient / 2
            nxt[j + 1] += coefficient / (8 * (j + 1))
            nxt[j + 3] -= 5 * coefficient / (8 * (j + 3))
        polynomials.append(nxt)
    return [[float(c) for c in u] for u in polynomials]


DEBYE_POLYNOMIALS = _debye_polynomials(8)
DEBYE_MIN_ORDER = 16.0  # from this order on, 8 Debye terms give log K to < 3e-11 (vs mpmath) for all x > 0


def log_bessel_k(nu, x):
    """log K_nu(x) for a fixed order nu >= 0 (Python float) and x > 0, differentiable in x, no overflow
    or underflow for any float64 x > 0 and orders up to thousands (Yukawa: nu = (N + 1) / 2).

    - nu >= DEBYE_MIN_ORDER: uniform asymptotic (Debye) expansion, z = x / nu, p = 1 / sqrt(1 + z^2),
      K_nu(nu z) ~ sqrt(pi / (2 nu)) e^{-nu eta} (1 + z^2)^{-1/4} sum_k (-1)^k u_k(p) / nu^k (8 terms).
    - integer or half-integer nu below that: upward recurrence K_{n+1} = K_{n-1} + (2n / x) K_n, stable for K,
      run on the ratios K_{n+1} / K_n in log space from the scaled K_0, K_1 (or closed-form K_{1/2}, K_{3/2}).
    """
    if nu < 0:
        nu = -nu  # K_{-nu} = K_nu
    if nu >= DEBYE_MIN_ORDER:
        z = x / nu
        root = torch.sqrt(1 + z * z)
        p = 1 / root
        eta = root + torch.log(z / (1 + root))
        series = torch.zeros_like(x)
        for k in reversed(range(len(DEBYE_POLYNOMIALS))):
            u_k = torch.zeros_like(p)
            for coefficient in reversed(DEBYE_POLYNOMIALS[k]):
                u_k = u_k * p + coefficient
            series = series * (-1 / nu) + u_k
        return 0.5 * math.log(math.pi / (2 * nu)) - nu * eta - 0.25 * torch.log1p(z * z) + torch.log(series)
    twice = 2 * nu
    if twice != round(twice):
        raise ValueError(f"log_bessel_k: order {nu} below {DEBYE_MIN_ORDER} must be an integer or half-integer")
    if round(twice) % 2 == 0:  # integer order: start from K_0, K_1
        order = 0.0
        log_k = torch.log(bessel_k0e(x)) - x
        ratio = bessel_k1e(x) / bessel_k0e(x)
    else:  # half-integer order: K_{1/2} = sqrt(pi / 2x) e^{-x}, K_{3/2} / K_{1/2} = 1 + 1/x
        order = 0.5
        log_k = 0.5 * torch.log(math.pi / (2 * x)) - x
        ratio = 1 + 1 / x
    while order < nu:
        log_k = log_k + torch.log(ratio)
        order += 1
        ratio = 1 / ratio + 2 * order / x
    return log_k


# --------------------------------------------------------------------------------------------------
# log-space quadrature of log-concave integrands

TRAPEZOID_NODES = 96


def log_concave_trapezoid(log_integrand, mode, scale, left, right, nodes=TRAPEZOID_NODES):
    """log int exp(g(l)) dl for g concave in l, by the trapezoid rule on l = mode + scale * x with x on
    [-left, right] (per-element extents, in units of ``scale`` = 1 / sqrt(-g''(mode))).

    ``log_integrand`` maps l (shape (*batch, nodes)) to g(l); ``mode``, ``scale``, ``left``, ``right`` have
    shape batch. For smooth concave g the trapezoid error decays geometrically with the node spacing; the
    extents are chosen by the caller so that the truncated tails are below e^-40 of the peak.
    """
    grid = torch.linspace(0.0, 1.0, nodes, dtype=mode.dtype, device=mode.device)
    x = -left.unsqueeze(-1) + (left + right).unsqueeze(-1) * grid
    step = ((left + right) / (nodes - 1)).unsqueeze(-1)
    trapezoid_weight = torch.ones(nodes, dtype=mode.dtype, device=mode.device)
    trapezoid_weight[0] = trapezoid_weight[-1] = 0.5
    l = mode.unsqueeze(-1) + scale.unsqueeze(-1) * x
    log_terms = log_integrand(l) + torch.log(trapezoid_weight * step * scale.unsqueeze(-1))
    return torch.logsumexp(log_terms, -1), l, log_terms


def gauss_legendre(nodes, dtype=torch.float64):
    """Gauss-Legendre nodes and weights on [-1, 1] (Golub-Welsch: eigen-decomposition of the Jacobi matrix)."""
    k = torch.arange(1, nodes, dtype=torch.float64)
    off_diagonal = k / torch.sqrt(4 * k * k - 1)
    jacobi = torch.diag(off_diagonal, 1) + torch.diag(off_diagonal, -1)
    points, vectors = torch.linalg.eigh(jacobi)
    return points.to(dtype), (2 * vectors[0].square()).to(dtype)


# --------------------------------------------------------------------------------------------------
# scale mixtures whose density is one quadrature per row


class RadialMixtureKernel(torch.nn.Module):
    """Base of the isotropic families whose log-kernel and posterior velocity factor come from one quadrature
    per row over the mixing variable: a subclass defines ``_mixture(rho2, t, n, with_factor) -> (log_p,
    factor or None)`` for a block of rows and ``_factor(latent, t)``, the coupled velocity's factor given the
    latent. Rows go in blocks of ``mixture_rows`` so that memory stays bounded (rows x nodes float64)."""

    mixture_rows = 256

    def _blocks(self, d, t, with_factor):
        n = event_size(d)
        rho2 = squared_norm(d).to(torch.float64)
        times = t.to(torch.float64).expand(rho2.shape)
        rows = self.mixture_rows
        parts = [self._mixture(rho2[i:i + rows], times[i:i + rows], n, with_factor)
                 for i in range(0, rho2.shape[0], rows)]
        log_p = torch.cat([p[0] for p in parts]) if parts else rho2
        factor = torch.cat([p[1] for p in parts]) if parts and with_factor else None
        return log_p, factor

    def conditional_velocity(self, d, t, latent=None):
        if latent is not None:
            factor = self._factor(latent.to(torch.float64), t.to(torch.float64))
        else:
            factor = self._blocks(d, t, with_factor=True)[1]
        return d * batch_view(factor.to(d.dtype), d)

    def log_kernel(self, d, t):
        return self._blocks(d, t, with_factor=False)[0].to(d.dtype)
