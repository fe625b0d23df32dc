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


NORMAL_CHUNK_ELEMENTS = 2**17  # standard_normal fills CPU tensors in chunks of about this many entries


def standard_normal(shape, dtype, device, generator=None):
    """N(0, 1) draws of ``shape``. On CPU, large tensors are filled in chunks of NORMAL_CHUNK_ELEMENTS (the last
    chunk takes the remainder): ATen's normal_ first writes every uniform, then transforms them in blocks of 16, so
    one call on a tensor beyond the cache makes two passes through memory (B = 4096, N = 3072 float32: 70 ms, in
    chunks 55 ms). The chunks are multiples of 16 entries, so the draws are those of a single call."""
    draw_device = _draw_device(device, generator)
    draw = torch.empty(shape, dtype=dtype, device=draw_device)
    flat = draw.view(-1)
    chunks = flat.numel() // NORMAL_CHUNK_ELEMENTS
    if draw_device.type != "cpu" or chunks < 2:
        return draw.normal_(generator=generator).to(device)
    for index in range(chunks):
        stop = flat.numel() if index == chunks - 1 else (index + 1) * NORMAL_CHUNK_ELEMENTS
        flat[index * NORMAL_CHUNK_ELEMENTS : stop].normal_(generator=generator)
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
# positive beta-stable S (E e^(-u S) = e^(-u^beta)): Kanter's method, in logs


def kanter_tables(betas, device):
    """(angle factors (3, K): beta pi, (1 - beta) pi, pi; weights (4, K): 1, 1/g, -1/(g (1 - beta)) = -1/beta,
    -1/g with g = beta / (1 - beta)), float64 on ``device``, per beta in ``betas`` (floats in (0, 1))."""
    angles = [[b * math.pi for b in betas], [(1 - b) * math.pi for b in betas], [math.pi for _ in betas]]
    weights = [[1.0 for _ in betas], [(1 - b) / b for b in betas], [-1 / b for b in betas],
               [(b - 1) / b for b in betas]]
    return (torch.tensor(angles, dtype=torch.float64, device=device),
            torch.tensor(weights, dtype=torch.float64, device=device))


def sample_log_positive_stable(tables, shape, device, generator=None):
    """log S of ``shape`` (float64; its first axis runs over the K betas of ``kanter_tables``, any shape for K = 1):
    S = (a(U) / E)^(1/g), a(u) = sin(beta u)^g sin((1 - beta) u) / sin(u)^(1/(1 - beta)), U = pi V, V ~ U(0, 1),
    E = -log U', U' ~ U(0, 1) (V and U' from one draw, V first); sin(U) from the nearer end point. The four
    logarithms in one pass, summed by one product with their weights: at small batches, per-operation dispatch
    and not arithmetic is the cost."""
    angles, weights = tables
    v, e = uniform_open((2, *shape), torch.float64, device, generator).unbind(0)
    lead = (-1, *[1] * (len(shape) - 1)) if shape else ()
    sines = torch.sin(torch.stack((v, v, torch.minimum(v, 1 - v))).mul_(angles.view(3, *lead)))
    logs = torch.cat((sines, torch.log(e).neg_().unsqueeze(0))).log_()
    return logs.mul_(weights.view(4, *lead)).sum(0)


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
# Poisson CDF tables over a window of counts, their bucket ranges and exact search (the Kac sampler's class tables)


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


def poisson_bucket_counts(cdf, buckets, dtype=torch.int64):
    """For U uniform in bucket j = [j/M, (j+1)/M), the Poisson count n = #{k: F(k) <= U} lies in
    [low_j, high_j] (a single count where low_j == high_j); returns (low, high), shapes (R, M), M = ``buckets``,
    of ``dtype`` (torch.float32 skips the conversion of the float32 cumulative sums; counts < 2^24 are exact).

    low_j = #{k: M F(k) <= j} = #{k: ceil(M F(k)) <= j}, high_j = #{k: M F(k) < j+1} = #{k: floor(M F(k)) <= j}:
    two histograms and a cumulative sum, exact in the float64 values of F.
    """
    rows = cdf.shape[0]
    scaled = cdf * buckets
    ones = torch.ones_like(scaled, dtype=torch.float32)  # counts < 2^24: exact in float32 (fast cumsum)

    def count_at_most(edge_index):
        histogram = torch.zeros(rows, buckets + 1, dtype=torch.float32, device=cdf.device)
        histogram.scatter_add_(1, edge_index.clamp_max(buckets).to(torch.int64), ones)
        return histogram.cumsum_(-1)[:, :buckets].to(dtype)

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


# --------------------------------------------------------------------------------------------------
# special functions with gradients
#
# torch 2.13's modified_bessel_k0/k1 and scaled_modified_bessel_k0/k1 return results without grad_fn
# (silently non-differentiable); these Functions add backward (built from each other, so higher
# derivatives work), forward-mode jvp and a generated vmap rule. i0/i0e/i1/i1e differentiate natively.


def _with_derivative(function, derivative):
    """The elementwise ``function`` as an autograd Function whose backward and jvp multiply by ``derivative(x)``
    (itself built from these Functions, so higher derivatives work); its vmap rule is generated."""

    class Special(torch.autograd.Function):
        generate_vmap_rule = True

        @staticmethod
        def forward(x):
            return function(x)

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])
            ctx.save_for_forward(inputs[0])

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * derivative(x)

        @staticmethod
        def jvp(ctx, x_tangent):
            (x,) = ctx.saved_tensors
            return x_tangent * derivative(x)

    return Special.apply


# K_0, K_1 and their scaled forms e^x K_0, e^x K_1, differentiable
bessel_k0 = _with_derivative(torch.special.modified_bessel_k0, lambda x: -bessel_k1(x))  # K0' = -K1
bessel_k1 = _with_derivative(torch.special.modified_bessel_k1,
                             lambda x: -bessel_k0(x) - bessel_k1(x) / x)  # K1' = -K0 - K1/x
bessel_k0e = _with_derivative(torch.special.scaled_modified_bessel_k0,
                              lambda x: bessel_k0e(x) - bessel_k1e(x))  # (e^x K0)' = e^x K0 - e^x K1
# (e^x K1)' = e^x K1 (1 - 1/x) - e^x K0
bessel_k1e = _with_derivative(torch.special.scaled_modified_bessel_k1,
                              lambda x: bessel_k1e(x) * (1 - 1 / x) - bessel_k0e(x))


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
    """log K_nu(x) for a fixed order nu >= 0 (Python float) and x > 0 (log_bessel_ke(nu, x) - x)."""
    return log_bessel_ke(nu, x) - x


def log_bessel_ke(nu, x):
    """log(K_nu(x) e^x) for a fixed order nu >= 0 (Python float) and x > 0, differentiable in x, no overflow
    or underflow for any float64 x > 0 and orders up to thousands (Yukawa: nu = (N + 1) / 2). Without its -x,
    which the NIG kernel cancels against e^{m tau} exactly (m tau - m r as floats lost 5e-5 at m tau = 2.5e11).

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
        # eta - z = R + log(z / (1 + R)) - z without cancelling two terms ~z: 1/(R + z) - log1p((1 + 1/(R + z)) / z)
        eta_minus_z = 1 / (root + z) - torch.log1p((1 + 1 / (root + z)) / z)
        series = torch.zeros_like(x)
        for k in reversed(range(len(DEBYE_POLYNOMIALS))):
            u_k = torch.zeros_like(p)
            for coefficient in reversed(DEBYE_POLYNOMIALS[k]):
                u_k = u_k * p + coefficient
            series = series * (-1 / nu) + u_k
        return 0.5 * math.log(math.pi / (2 * nu)) - nu * eta_minus_z - 0.25 * torch.log1p(z * z) + torch.log(series)
    twice = 2 * nu
    if twice != round(twice):
        raise ValueError(f"log_bessel_k: order {nu} below {DEBYE_MIN_ORDER} must be an integer or half-integer")
    if round(twice) % 2 == 0:  # integer order: start from K_0, K_1
        order = 0.0
        log_k = torch.log(bessel_k0e(x))
        ratio = bessel_k1e(x) / bessel_k0e(x)
    else:  # half-integer order: K_{1/2} = sqrt(pi / 2x) e^{-x}, K_{3/2} / K_{1/2} = 1 + 1/x
        order = 0.5
        log_k = 0.5 * torch.log(math.pi / (2 * x))
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
# t(sigma) of the mixture families whose sigma^2(t) has no closed-form inverse: a cubic Hermite table of log t
# against log sigma^2 (a handful of tensor operations per call, where a Newton solve costs dozens at small batches)

LOG_TIME_TABLE_NODES = 7169  # log sigma^2 from -LOG_TIME_TABLE_REACH to LOG_TIME_TABLE_REACH, spacing 1/128
LOG_TIME_TABLE_REACH = 28.0  # sigma from 1e-6 to 1e6


def log_time_table(newton_t_of_sigma2, sigma2_and_slope, device):
    """(4, LOG_TIME_TABLE_NODES - 1) float64 on ``device``: the cubic Hermite pieces of log t against log sigma^2
    (values from ``newton_t_of_sigma2(s2)``, slopes d log t / d log sigma^2 = sigma^2 / (t d sigma^2/dt) from
    ``sigma2_and_slope(t) -> (sigma^2, d sigma^2/dt)``), in powers of the position inside the piece."""
    log_s2 = torch.linspace(-LOG_TIME_TABLE_REACH, LOG_TIME_TABLE_REACH, LOG_TIME_TABLE_NODES, dtype=torch.float64)
    t = newton_t_of_sigma2(torch.exp(log_s2))
    value, slope = sigma2_and_slope(t)
    y = torch.log(t)
    d = value / (t * slope) * (log_s2[1] - log_s2[0])  # slope in units of the spacing
    pieces = torch.stack([y[:-1], d[:-1], 3 * (y[1:] - y[:-1]) - 2 * d[:-1] - d[1:],
                          2 * (y[:-1] - y[1:]) + d[:-1] + d[1:]])
    return pieces.to(device)


def read_log_time_table(pieces, s2):
    """(t from the cubic Hermite piece of ``log_time_table`` at sigma^2 = s2 (float64; relative error ~1e-7 for the
    families' smooth sigma^2(t), so one Newton step lands at rounding), None when no s2 lies outside the table, else
    where they do; nan sigma: nan t, not outside)."""
    position = torch.log(s2).add_(LOG_TIME_TABLE_REACH).mul_((LOG_TIME_TABLE_NODES - 1) / (2 * LOG_TIME_TABLE_REACH))
    index = position.floor().nan_to_num_(0.0).clamp_(0, LOG_TIME_TABLE_NODES - 2)  # nan sigma: nan t below
    x = position.sub_(index)  # in [0, 1] inside the table
    c0, c1, c2, c3 = torch.index_select(pieces, 1, index.long()).unbind(0)
    log_t = torch.addcmul(c0, torch.addcmul(c1, torch.addcmul(c2, c3, x), x), x)
    low, high = torch.aminmax(x) if x.numel() else (x.new_zeros(()), x.new_zeros(()))
    outside = (x < 0) | (x > 1) if float(low) < 0 or float(high) > 1 else None
    return log_t.exp_(), outside


# --------------------------------------------------------------------------------------------------
# scale mixtures whose density is one quadrature per row
#
# Many rows at one t (Process.marginal_velocity: every (sample, data point) pair of an ODE step) read a radial
# profile instead: log p and log E[V_dot / (2V) | d] depend on d only through L = log |d|^2, smoothly, so per
# (t, N) they are interpolated by Chebyshev polynomials on panels in L, filled on first use from the quadrature
# itself at the panels' Chebyshev points. The panels tile cells of width PROFILE_CELL over
# log(N sigma(t)^2) +- PROFILE_HALF_RANGE; a panel is accepted when its last Chebyshev coefficients are below
# PROFILE_TOLERANCE (for log p times max(1, |log p| / 100): log p reaches 1e4 in the bulk at N = 3072 and -1e6
# in the far tails, where the quadrature itself carries 1e-12 relative), otherwise halved, down to
# PROFILE_MAX_DEPTH halvings; only the halves that rows actually visit are refined. An accepted panel's
# polynomial is then re-expanded, exactly, on 1, 2, 4, ... (at most 256) equal sub-panels until the terms beyond
# degree PROFILE_EVAL_DEGREE sum to less than PROFILE_TOLERANCE / 10 (for log p times max(1, |log p| / 1000)) on
# each: the rows pay a Horner scheme of that lower degree. Rows outside the cells (|d| = 0 included) and in
# panels that never converged take the quadrature (tests/test_radial_profile.py: agreement with it row by row).

PROFILE_MIN_ROWS = 512  # rows sharing one t from which a profile is made; fewer take the quadrature row by row
# (unless that t's profile exists already): a new profile costs some 25-40 quadrature rows at N = 3072 and 60-250
# at N = 2 (bench/cost.py's cases), so below a few hundred rows it would not pay for itself within the call
PROFILE_DEGREE = 16  # Chebyshev degree per panel (a panel costs PROFILE_DEGREE + 1 quadrature rows)
PROFILE_EVAL_DEGREE = 6  # degree of the sub-panels' polynomials that rows are evaluated with
PROFILE_SLOT_BITS = 3  # the slot map resolves 2^PROFILE_SLOT_BITS sub-panels of the narrowest panels
PROFILE_CELL = 4.0  # width in L = log |d|^2 of the coarsest panels
PROFILE_MAX_DEPTH = 9  # halvings of a cell at most (panels down to PROFILE_CELL / 512)
PROFILE_HALF_RANGE = 48.0  # cells cover log(N sigma(t)^2) +- this in L; the quadrature beyond
PROFILE_TOLERANCE = 1e-9  # accepted when the last two coefficients are below this (see above)
PROFILE_CACHE = 4  # profiles (t, N, device) kept per instance, least recently used dropped first
_PROFILE_UNBUILT, _PROFILE_QUADRATURE = -1, -2  # slot markers: not yet visited; left to the quadrature


def _chebyshev_to_monomial(degree):
    """(degree + 1, degree + 1) float64 matrix: Chebyshev coefficients -> power coefficients on [-1, 1]
    (T_(k+1) = 2 x T_k - T_(k-1), integers, exact in float64 up to degree 50)."""
    rows = [[1.0] + [0.0] * degree, [0.0, 1.0] + [0.0] * (degree - 1)]
    for _ in range(2, degree + 1):
        rows.append([2.0 * a - b for a, b in zip([0.0] + rows[-1][:-1], rows[-2])])
    return torch.tensor(rows[: degree + 1], dtype=torch.float64)


def _split_panel(power, magnitude, max_bits):
    """A panel's power coefficients (outputs, degree + 1) in x on [-1, 1], re-expanded on m = 1, 2, 4, ... <=
    2^max_bits equal sub-panels (x = c_i + u / m, u on [-1, 1]) until the terms beyond degree PROFILE_EVAL_DEGREE
    sum to at most PROFILE_TOLERANCE / 10 (log p, output 0, of largest size ``magnitude`` on the panel: times
    max(1, magnitude / 1000)) on each: (m, outputs, eval degree + 1), or None when 2^max_bits do not suffice."""
    keep = PROFILE_EVAL_DEGREE + 1
    limit = torch.tensor([max(1.0, magnitude / 1000), 1.0], dtype=torch.float64) * (PROFILE_TOLERANCE / 10)
    for bits in range(max_bits + 1):
        pieces = torch.einsum("ijk,ok->ioj", _sub_panel_shift(power.shape[1] - 1, bits), power)
        if bool((pieces[..., keep:].abs().sum(-1) <= limit).all()):
            return pieces[..., :keep]
    return None


_SUB_PANEL_SHIFTS = {}  # (degree, bits) -> _sub_panel_shift's matrix (CPU float64; a few dozen at most)


def _sub_panel_shift(degree, bits):
    """[i, j, k] = C(k, j) c_i^(k - j) / m^j (k >= j; else 0), m = 2^bits, c_i = -1 + (2 i + 1) / m: power
    coefficients p_k in x on [-1, 1] -> q_j = sum_k [i, j, k] p_k in u on sub-panel i (x = c_i + u / m)."""
    key = (degree, bits)
    if key not in _SUB_PANEL_SHIFTS:
        m = 1 << bits
        j = torch.arange(degree + 1, dtype=torch.float64)
        gap = j[None, :] - j[:, None]  # k - j at [j, k]
        binomial = torch.exp(torch.lgamma(j + 1)[None, :] - torch.lgamma(j + 1)[:, None]
                             - torch.lgamma(gap.clamp_min(0) + 1)).round()
        centre = -1 + (2 * torch.arange(m, dtype=torch.float64) + 1) / m
        shift = torch.where(gap >= 0, binomial, 0.0) * centre[:, None, None] ** gap.clamp_min(0)
        _SUB_PANEL_SHIFTS[key] = shift * (float(m) ** -j)[None, :, None]
    return _SUB_PANEL_SHIFTS[key]


class RadialMixtureKernel(torch.nn.Module):
    """Base of the isotropic families whose log-kernel and posterior velocity factor come from one quadrature
    per row over the mixing variable: a subclass defines ``_mixture(rho2, t, n, with_factor) -> (log_p,
    factor or None)`` for a block of rows and ``_factor(latent, t)``, the coupled velocity's factor given the
    latent. Rows go in blocks of ``mixture_rows`` so that memory stays bounded (rows x nodes float64).
    A call with at least PROFILE_MIN_ROWS rows at one t reads that t's radial profile (the section above)."""

    mixture_rows = 256

    def __init__(self):
        super().__init__()
        self._profiles = {}  # (t, N, device) -> radial profile, least recently used first (PROFILE_CACHE)

    def _quadrature(self, rho2, times, n, with_factor):
        """(log p, factor or None) per row by the subclass' quadrature, in blocks of ``mixture_rows``."""
        rows = self.mixture_rows
        parts = [self._mixture(rho2[i:i + rows], times[i:i + rows], n, with_factor)
                 for i in range(0, rho2.shape[0], rows)]
        log_p = torch.cat([p[0] for p in parts]) if parts else rho2.clone()
        factor = (torch.cat([p[1] for p in parts]) if parts else rho2.clone()) if with_factor else None
        return log_p, factor

    def _blocks(self, d, t, with_factor):
        rho2 = squared_norm(d).to(torch.float64)
        return self._radial(rho2, t.to(torch.float64).expand(rho2.shape), event_size(d), with_factor)

    def _radial(self, rho2, times, n, with_factor):
        """(log p, factor or None) at |d|^2 = ``rho2`` (float64, (R,)) and ``times``: the radial profile of each
        t that PROFILE_MIN_ROWS rows share (or whose profile exists), the quadrature for the other rows."""
        if rho2.shape[0] == 0:
            return self._quadrature(rho2, times, n, with_factor)
        if bool((times == times[0]).all()):
            # few rows: the quadrature, unless this t's profile exists already (e.g. the last chunk of data)
            if rho2.shape[0] < PROFILE_MIN_ROWS and not self._has_profile(float(times[0]), n, rho2.device):
                return self._quadrature(rho2, times, n, with_factor)
            groups = [(float(times[0]), None)]
        else:
            values, inverse, counts = torch.unique(times, return_inverse=True, return_counts=True)
            frequent = (counts >= PROFILE_MIN_ROWS).nonzero().squeeze(-1).tolist()
            groups = [(float(values[j]), (inverse == j).nonzero().squeeze(-1)) for j in frequent]
        if len(groups) == 1 and groups[0][1] is None:  # one t for all rows: no copies
            (log_p, factor), read = self._profile_values(rho2, groups[0][0], n, with_factor)
            pending = ~read
        else:
            log_p = torch.empty_like(rho2)
            factor = torch.empty_like(rho2) if with_factor else None
            pending = torch.ones_like(rho2, dtype=torch.bool)
            for t_value, rows in groups:
                (group_log_p, group_factor), read = self._profile_values(rho2[rows], t_value, n, with_factor)
                log_p[rows] = group_log_p
                if with_factor:
                    factor[rows] = group_factor
                pending[rows] = ~read
        if bool(pending.any()):
            rest = pending.nonzero().squeeze(-1)
            rest_log_p, rest_factor = self._quadrature(rho2[rest], times[rest], n, with_factor)
            log_p[rest] = rest_log_p
            if with_factor:
                factor[rest] = rest_factor
        return log_p, factor

    def conditional_velocity(self, d, t, latent=None):
        if latent is not None:
            factor = self._factor(latent.to(torch.float64), t.to(torch.float64))
        else:
            factor = self._blocks(d, t, with_factor=True)[1]
        return d * batch_view(factor.to(d.dtype), d)

    def log_kernel(self, d, t):
        return self._blocks(d, t, with_factor=False)[0].to(d.dtype)

    def log_kernel_and_velocity(self, d, t):
        """(log_kernel(d, t), conditional_velocity(d, t)) from one pass (Process.marginal_velocity)."""
        log_p, factor = self._blocks(d, t, with_factor=True)
        return log_p.to(d.dtype), d * batch_view(factor.to(d.dtype), d)

    # ---- the radial profile of one (t, N)

    def _has_profile(self, t_value, n, device):
        return (t_value, n, str(device)) in self._profiles

    def _profile(self, t_value, n, device):
        """The profile of (t, N) on ``device``, from the instance's LRU (made empty if absent)."""
        cache = self._profiles
        key = (t_value, n, str(device))
        if key in cache:
            cache[key] = cache.pop(key)  # most recently used last
            return cache[key]
        while len(cache) >= PROFILE_CACHE:
            cache.pop(next(iter(cache)))
        cells = round(2 * PROFILE_HALF_RANGE / PROFILE_CELL)
        slots = 1 << (PROFILE_MAX_DEPTH + PROFILE_SLOT_BITS)
        t64 = torch.tensor([t_value], dtype=torch.float64, device=device)
        scale = float(self.sigma(t64)[0])
        anchor = math.log(n) + (2 * math.log(scale) if 0 < scale < math.inf else 0.0)  # only places the cells
        # slots of width PROFILE_CELL / 2^(PROFILE_MAX_DEPTH + PROFILE_SLOT_BITS) in L: map entry 1 + i is slot i, 0 and
        # slots + 1 stand for everything below and above (and for nan): the quadrature's
        panel_of_slot = torch.full((cells * slots + 2,), _PROFILE_UNBUILT, dtype=torch.int32, device=device)
        panel_of_slot[0] = panel_of_slot[-1] = _PROFILE_QUADRATURE
        # where to start halving: the depths a profile of the same N accepted at the same L - anchor (the last
        # one used: in an ODE solve, the previous step's), else the coarsest panels
        start_depth = torch.zeros(cells * slots, dtype=torch.int8)
        for other_key in reversed(cache):
            if other_key[1:] == key[1:]:
                other = cache[other_key]
                start_depth = torch.where(other["depth_of_slot"] >= 0, other["depth_of_slot"], other["start_depth"])
                break
        profile = {"t": t64, "low": anchor - PROFILE_HALF_RANGE, "slot_width": PROFILE_CELL / slots,
                   "slots": cells * slots, "panel_of_slot": panel_of_slot, "start_depth": start_depth,
                   "depth_of_slot": torch.full((cells * slots,), -1, dtype=torch.int8),
                   # per sub-panel: 2 / its width and -(1 + 2 left / width), so that x = L ends[0] + ends[1] lies
                   # in [-1, 1] on it; the power coefficients of log p and log factor in x
                   "ends": torch.zeros(2, 0, dtype=torch.float64, device=device),
                   "coefficients": torch.zeros(2, PROFILE_EVAL_DEGREE + 1, 0, dtype=torch.float64, device=device)}
        cache[key] = profile
        return profile

    def _profile_values(self, rho2, t_value, n, with_factor):
        """((log p, factor or None), read) for rows at one t: the profile's interpolants where ``read``."""
        profile = self._profile(t_value, n, rho2.device)
        log_rho2 = torch.log(rho2)
        # map entry 1 + floor((L - low) / slot width), clamped onto the two outside entries (log 0 = -inf and nan: 0)
        entry = log_rho2.mul(1 / profile["slot_width"]).add_(1 - profile["low"] / profile["slot_width"])
        entry = entry.nan_to_num_(-1.0).clamp_(0, profile["slots"] + 1).to(torch.int32)
        panel = profile["panel_of_slot"].index_select(0, entry)
        unbuilt = panel == _PROFILE_UNBUILT
        if bool(unbuilt.any()):
            visits = torch.bincount((entry[unbuilt] - 1).long(), minlength=profile["slots"])
            if self._build_profile(profile, n, visits.cpu()):
                panel = profile["panel_of_slot"].index_select(0, entry)
        read = panel >= 0
        if profile["ends"].shape[1] == 0:  # no panel yet (all rows where the quadrature answers)
            return (torch.zeros_like(rho2), torch.ones_like(rho2) if with_factor else None), read
        panel = panel.clamp_min_(0)
        ends = profile["ends"]
        x = torch.addcmul(ends[1].index_select(0, panel), log_rho2, ends[0].index_select(0, panel))  # in [-1, 1]
        # Horner, one power at a time: gathers from one short contiguous row of coefficients, with int32 indices,
        # are the cheapest per value (this runs once per row; a (rows, degree + 1) gather is several times slower)
        values = []
        for coefficients in profile["coefficients"][: 2 if with_factor else 1]:
            value = coefficients[PROFILE_EVAL_DEGREE].index_select(0, panel)
            for k in range(PROFILE_EVAL_DEGREE - 1, -1, -1):
                value = torch.addcmul(coefficients[k].index_select(0, panel), value, x)
            values.append(value)
        return (values[0], torch.exp(values[1]) if with_factor else None), read

    def _build_profile(self, profile, n, visits):
        """Interpolants for the panels holding the slots that rows visit (``visits``: rows per slot, CPU), level by
        level: each round evaluates the quadrature at the Chebyshev points of every pending panel at once. A panel
        that fewer than PROFILE_DEGREE + 1 rows visit is left unbuilt (its rows cost less by quadrature).
        Returns whether any panel was evaluated."""
        degree, max_depth = PROFILE_DEGREE, PROFILE_MAX_DEPTH
        top = 1 << (max_depth + PROFILE_SLOT_BITS)  # slots per cell
        device = profile["panel_of_slot"].device
        j = torch.arange(degree + 1, dtype=torch.float64)
        angles = math.pi * (j + 0.5) / (degree + 1)
        transform = torch.cos(torch.outer(j, angles)) * (2 / (degree + 1))
        transform[0] /= 2
        to_power = _chebyshev_to_monomial(degree)
        slots = visits.nonzero().squeeze(-1)
        depth = profile["start_depth"][slots].long()
        first = slots // (top >> depth) * (top >> depth)
        panels = torch.unique(depth * (profile["slots"] + 1) + first)
        # (depth, first slot, excess of the parent and grandparent panels: tail over tolerance; inf when not known)
        pending = [(k, s, (math.inf, math.inf)) for k, s in zip((panels // (profile["slots"] + 1)).tolist(),
                                                     (panels % (profile["slots"] + 1)).tolist())]
        cumulative = torch.cat([torch.zeros(1, dtype=torch.int64), visits.cumsum(0)])

        def visited(candidates):  # the (depth, first slot, excess) panels that more than `degree` rows visit
            if not candidates:
                return []
            first = torch.tensor([s for _, s, _ in candidates])
            stop = first + torch.tensor([top >> k for k, _, _ in candidates])
            rows = (cumulative[stop] - cumulative[first]).tolist()
            return [candidate for candidate, count in zip(candidates, rows) if count > degree]

        pending = visited(pending)
        changed = bool(pending)
        new_ends, new_coefficients = [], []
        count = profile["ends"].shape[1]
        while pending:
            spans = torch.tensor([top >> k for k, _, _ in pending], dtype=torch.float64)
            lefts = profile["low"] + profile["slot_width"] * torch.tensor([s for _, s, _ in pending], dtype=torch.float64)
            widths = profile["slot_width"] * spans
            nodes = (lefts + widths / 2).unsqueeze(-1) + (widths / 2).unsqueeze(-1) * torch.cos(angles)
            rho2 = torch.exp(nodes.reshape(-1)).to(device)
            with torch.no_grad():
                log_p, factor = self._quadrature(rho2, profile["t"].expand(rho2.shape), n, True)
            values = torch.stack([log_p, torch.log(factor)], -1).cpu().reshape(len(pending), degree + 1, 2)
            chebyshev = torch.einsum("kj,pjo->pko", transform, values)  # (panels, degree + 1, outputs)
            magnitude = values[..., 0].abs().amax(-1)
            scale = torch.clamp(magnitude / 100, min=1.0)
            tail = chebyshev[:, -2:].abs().amax(1)  # (panels, outputs)
            excess = torch.maximum(tail[:, 0] / scale, tail[:, 1]) / PROFILE_TOLERANCE
            excess = torch.where(torch.isfinite(values).all(-1).all(-1), excess, math.inf).tolist()
            power = torch.einsum("kd,pko->pdo", to_power, chebyshev)
            following = []
            for index, (k, start, (parent_excess, grandparent_excess)) in enumerate(pending):
                stop = start + (top >> k)
                bits = min(PROFILE_SLOT_BITS + max_depth - k, 8)
                pieces = _split_panel(power[index].T, float(magnitude[index]), bits) if excess[index] <= 1 else None
                if pieces is not None:
                    m = pieces.shape[0]
                    profile["panel_of_slot"][start + 1:stop + 1] = count + torch.arange(stop - start) // ((stop - start) // m)
                    profile["depth_of_slot"][start:stop] = k
                    count += m
                    sub_widths = widths[index] / m
                    sub_lefts = lefts[index] + sub_widths * torch.arange(m, dtype=torch.float64)
                    new_ends.append(torch.stack([torch.full((m,), 2 / sub_widths), -1 - 2 * sub_lefts / sub_widths]))
                    new_coefficients.append(pieces.permute(1, 2, 0))  # (outputs, eval degree + 1, m)
                elif k == max_depth or not (excess[index] < parent_excess / 2 or parent_excess < grandparent_excess / 2):
                    # halving a panel shrinks the tail of an analytic function (by ~2^degree once the panel is
                    # narrower than the distance to its nearest singularity); no 2x gain in two halvings means a
                    # jump or noise of the quadrature above the tolerance: the rows there stay with the quadrature
                    profile["panel_of_slot"][start + 1:stop + 1] = _PROFILE_QUADRATURE
                else:
                    middle = (start + stop) // 2
                    profile["start_depth"][start:stop] = k + 1
                    history = (excess[index], parent_excess)
                    following += [(k + 1, start, history), (k + 1, middle, history)]
            pending = visited(following)
        if new_ends:
            profile["ends"] = torch.cat([profile["ends"], *(e.to(device) for e in new_ends)], -1)
            profile["coefficients"] = torch.cat([profile["coefficients"], *(c.to(device) for c in new_coefficients)], -1)
        return changed
