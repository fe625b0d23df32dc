"""Kac product kernel (telegraph equation per coordinate, physics.md §4.5, Kac flows): every coordinate is an
independent 1-D Kac law K_t = int_0^t c D_s ds, D_s = +-1 flipping at Poisson(a) times:
atoms e^{-a t}/2 at +-c t and the absolutely continuous part (a e^{-a t} / 2c) [I0(z) + (c t / r) I1(z)] on
|x| < c t, r = sqrt(c^2 t^2 - x^2), z = a r / c. Velocity: x / (t + (r/c) I0(z)/I1(z)) inside the cone, +-c on it.

Sampler (exact): n ~ Poisson(a t) switches; n = 0: the atom +-c t; else x = D0 c (2S - t) with
S / t ~ Beta(ceil((n+1)/2), floor((n+1)/2)) and a fair initial direction D0. Integrating out D0 symmetrises the
law given n: x / (c t) = 2B - 1 with B ~ Beta(q, q), q = ceil(n/2) (for n even, the mixture of Beta(q+1, q) and
its mirror image has density ~ (1 - w^2)^(q-1)). Symmetric Betas come from Ulrich's polar method,
2B - 1 = sqrt(1 - U^(2/(2q-1))) cos(2 pi V) (a two-dimensional projection of a uniform point on a sphere).
Mixed over n, R = U^(1/(2q-1)) has a closed-form law (DIFFUSIVE_MIN_RATE below): rows with a t > 64 draw R by
inverting it, with no switch count.

Atoms in the log-kernel: each atom is regularised as a normal bump of mass e^{-a t}/2 and standard deviation
eps_atom(t) = atom_rtol c t + 32 eps(dtype) around +-c t, added to the a.c. density (log-sum-exp). The
regularised kernel integrates to 1 exactly, is finite everywhere, and a coordinate that a discrete reverse flow
pushed slightly over its cone (by O(step) when a particle merges with the front) is scored by its distance to
the front, -(|d| - c t)^2 / (2 eps_atom^2), rather than -inf: posterior weights over data points (softmax of
log_kernel) then stay finite and prefer the data point whose cones the particle sits on. The 32 eps(dtype)
term covers the rounding of d = x - y for data of order one (x, y ~ 1); atom_rtol (default 1e-4, the
threshold of the Kac-flow reference code) covers rounding relative to the cone. The same eps_atom decides,
without a latent, which coordinates move with the front in conditional_velocity (u = c d / (c t): +-c on it, and
a coordinate pushed over the cone is pulled back in proportion).
"""
import math  # runtime-import

import torch  # runtime-import

from pde2gen.families.runtime_common import (  # runtime-import
    batch_view,  # runtime-import
    i1e_over_x,  # runtime-import
    poisson_bucket_counts,  # runtime-import
    poisson_cdf,  # runtime-import
    poisson_search,  # runtime-import
    poisson_window,  # runtime-import
    random_bits31,  # runtime-import
    uniform_open,  # runtime-import
)  # runtime-import

CHUNK_ELEMENTS = 2**17  # CPU sampling works on row blocks of about this size (its 5 work buffers stay in L2: 2^16 and 2^18 measured slower)
TABLE_ENTRIES = 2**22  # ... and table blocks of at most this many CDF entries (about 26 sqrt(a t) per row)
# Class tables (_class_tables): the count n enters the Kac law only through its class q = ceil(n/2) (q = 0: the atom).
# bits_a = [8 bits: bucket j of the uniform U | 23 bits: radial uniform], bits_b = [23 bits: angle | 8 bits: s].
# Level 1 maps each of the 2^8 buckets of U to its class where one class covers the bucket (90-99% of draws for
# a t <= 16), else to SUB_BUCKETS sub-buckets picked by s (level 2); the rare sub-buckets that still hold a class
# edge (~0.15% of draws) are refined at the end by an exact bisection of the class CDF with a fresh float64 uniform.
BUCKET_BITS = 8
RADIAL_BITS = 31 - BUCKET_BITS
SUB_BUCKETS = 2**5
TABLE_BLOCK_ROWS = 2**23 // (2**BUCKET_BITS * (1 + SUB_BUCKETS))  # packed cell indices stay below 2^23 (int32 << 8)
CODE_REFINE = 2  # atom-mask byte of a draw to refine (0: off the atoms, 1: on an atom)
# CPU: a row's classes come from its tables only while they pay: at most CPU_TABLE_ENTRIES_PER_DRAW table entries
# (window + buckets) per draw of the row. Other rows draw their counts with torch.poisson, ATen's exact CPU sampler
# (Hoermann's PTRS for rates >= 10, the multiplication method below), ~30-60 ns per draw. Tables set by the
# largest a t in a batch made 2-D training batches ~100x slower than torch.randn. (Rows above DIFFUSIVE_MIN_RATE
# draw no counts; before they had their own path, tables measured no faster than torch.poisson beyond a t = 64.)
CPU_TABLE_ENTRIES_PER_DRAW = 1.0
# Diffusive rows, a t > DIFFUSIVE_MIN_RATE: no switch count at all. Ulrich's radius variable R = U^(1/(2q-1))
# (x / c t = sqrt(1 - R^2) cos(theta)) mixed over n ~ Poisson(a t) has the closed-form law
# P(R <= y) = e^{-a t} [1 + sinh(a t y) + (cosh(a t y) - 1) / y] (odd n give the sinh, even n >= 2 the cosh, n = 0
# the atom R = 0). It equals e^{-a t (1 - y)} (1 + 1/y) / 2 minus e^{-a t} (1/y - 1)(1 - e^{-a t y}/2), a term in
# [0, e^{-a t} / y]; so drawing R from the first form by inversion, v = 1 - R solving
# psi(v) = a t v - log1p(v / (2 (1 - v))) = -log U, moves the law by at most e^{-a t} / R <= 2 e^{-64} (R >= 1/2 for
# every float64 uniform at a t > 64: -log U <= 37.5) in Kolmogorov distance, the atoms' e^{-a t} < 2e-28 included
# (dropped: these rows report no atoms).
# Float64 rows solve it by Newton's method (DIFFUSIVE_NEWTON_STEPS); float32 rows evaluate its series instead, by Lagrange
# inversion radius^2 = v (2 - v) = sum_n d_n e^n in e = -log U / (a t - 1/2), d_n a polynomial in eps = 1 / (a t - 1/2)
# (_radius_series_table): each term is O(eps e) times the last (e <= 16.7 eps for float32 uniforms), so 8 terms
# reach 2^-27 relative at a t = 64 and 2 at 1e4 (DIFFUSIVE_SERIES_TOLERANCE; tests: mpmath, <= 4 ulp).
DIFFUSIVE_MIN_RATE = 64.0
DIFFUSIVE_NEWTON_STEPS = 3
DIFFUSIVE_SERIES_TERMS = 12  # the table's length (a t > 64 needs at most 8)
DIFFUSIVE_SERIES_TOLERANCE = 2.0**-27
FLOAT32_LARGEST_EXPONENTIAL = 24 * math.log(2)  # -log U for the smallest float32 radial uniform, 2^-24
MIN_TABLE_SIZE = 31  # the narrowest poisson_window (a t = 0): below 31 + 2^8 entries per row, no row takes a table
# log_kernel_and_velocity (Process.marginal_velocity's per-pair work) evaluates I0(z) and I1(z)/z itself, with
# plain multiply-adds: torch.special.i0e/i1e are scalar Chebyshev code, ~70 ns per value each. Below this z, the
# power series (all terms positive, no cancellation; 37 terms at z = 20); above, the asymptotic series in 1/z
# (economised, below). Both are within a few ulp (tests: mpmath). Blocks whose a t are all at most
# SERIES_BLOCK_MAX_RATE take the unscaled power series throughout (46 terms at z = 30). At a = 25, c = 2, sigma = 0.5
# (a t = 40) the split at z = 20 instead of 30 leaves 3% of the coordinates to the series instead of 13%.
BESSEL_SERIES_MAX_Z = 20.0
SERIES_BLOCK_MAX_RATE = 30.0
BESSEL_SERIES_BLOCK = 2**15  # coordinates per block of the series path: its ~100 passes over a block stay in cache
# log_kernel_and_velocity gathers the coordinates inside the cone (the Bessel work) while they are at most this
# share of a block (measured at N = 3072: the gather pays below about 25%; 1.7x faster at 1.5%, 0.7x at 50%)
SPARSE_MAX_INSIDE = 0.25
# _scaled_block adds the atom bump only within this many atom widths eps of the front (and beyond it). Further in,
# bump / p_ac = exp(-(gap/eps)^2/2 - log(2 sqrt(2 pi) eps) - log((a/2c)(i0e + a t i1e/z)) - z) < e^-800 e^32 e^(8 + |log(a/2c)|)
# (eps >= 32 eps(float64), i0e >= 1 / sqrt(2 pi z) for z <= 1e6): below e^-700 for 2c/a < e^60.
ATOM_REACH = 40.0
# log_kernel_and_velocity defers a dense block's coordinates near the front or with z < BESSEL_SERIES_MAX_Z to one
# pass over all blocks (_settle_edges: a dozen small operations per block saved) where a t <= DEFER_MAX_RATE, until
# a block has more than EDGE_MAX_SHARE of them. Measured (a = 25, c = 2, N = 3072, data ~ N(0, 1), against treating
# them in each block): 0.69x the time at a t = 60, 0.93-0.96x at 40 (~5% deferred), 0.97x at 120; deferring every
# block cost 1.36x at a t = 30.5 (~30% of the coordinates) and 1.02-1.03x at 500 (only the front's few)
EDGE_MAX_SHARE = 0.1
DEFER_MAX_RATE = 150.0
BESSEL_SERIES_TOLERANCE = 2.0**-60  # the series stop where the next term is below this fraction of the sum
_I0_SERIES = tuple(1.0 / math.factorial(k) ** 2 for k in range(64))  # I0(z) = sum_k y^k / (k!)^2, y = z^2/4
_I1_SERIES = tuple(0.5 / (math.factorial(k) * math.factorial(k + 1)) for k in range(64))  # I1(z)/z
# I_nu(z) ~ e^z / sqrt(2 pi z) sum_k (-1)^k a_k(nu) / z^k, a_k(nu) = prod_{j<=k} (4 nu^2 - (2j-1)^2) / (k! 8^k)
# (DLMF 10.40.1); at z >= 30 the 18th term is below 2^-55 of the sum. Coefficients of 1/z^k for I0 and for I1.
BESSEL_ASYMPTOTIC_TERMS = 32
_I0_ASYMPTOTIC = tuple(math.prod((2 * j - 1) ** 2 for j in range(1, k + 1)) / (math.factorial(k) * 8**k)
                       for k in range(BESSEL_ASYMPTOTIC_TERMS))
_I1_ASYMPTOTIC = tuple((-1) ** k * math.prod(4 - (2 * j - 1) ** 2 for j in range(1, k + 1)) / (math.factorial(k) * 8**k)
                       for k in range(BESSEL_ASYMPTOTIC_TERMS))
# bessel_scaled evaluates those two series through their Chebyshev economisation in u = BESSEL_SERIES_MAX_Z / z on
# [0, 1] (z >= 30): interpolated at import at ECONOMISED_NODES Chebyshev nodes (where the 18 terms are exact to 2^-55)
# and cut after ECONOMISED_TERMS terms, whose neglected Chebyshev coefficients are below 2^-55 (tests: mpmath); 10
# multiply-adds per value instead of 18, the largest share of the marginal velocity's work at large a t.
ECONOMISED_TERMS = 11
ECONOMISED_NODES = 32
# sigma^2 = (c^2 / 2 a^2) g(x), x = 2 a t, g(x) = e^{-x} - 1 + x. Below VARIANCE_SERIES_MAX_X, g by its series
# x^2 sum_k (-x)^k / (k+2)! (x + expm1(-x) cancels there: relative error 2^-52 / x); VARIANCE_SERIES_TERMS terms
# leave a tail below 2 x^8 / 10! < 2e-17 of the sum, and the other branch has at most 4.4e-15 at x = 0.05.
VARIANCE_SERIES_MAX_X = 0.05
VARIANCE_SERIES_TERMS = 8
# t_of_sigma: Newton steps from its initial guess (log error <= 0.012 over all x; each step leaves about e^2 / 8:
# 1.8e-5, 4e-11, 2e-22), a fixed count: no host synchronisation to test convergence (tests: mpmath).
T_OF_SIGMA_STEPS = 3
T_OF_SIGMA_GUESS = 0.2379  # alpha of the guess x0 = q + (u + alpha u^2) / (1 + (alpha + 1/3) u + alpha u^2), u = sqrt(2 q)
# Ulrich's symmetric Beta(q, q): x / (c t) = sqrt(1 - U^e) cos(theta), e = 2 / (2q - 1), computed from
# h = tanh(half log U), half = 1 / (2q - 1): 1 - U^e = 2h / (h - 1) without cancellation (expm1 costs 4 tanh on CPU).
# The atoms take half = ATOM_HALF: h = -1 exactly, radius 1, and the same factor multiplies cos(theta), whose
# |cos| >= 1e-7 on the angle grid, so that the clamp to [-1, 1] leaves sign(cos theta) = +-1: the fair direction.
ATOM_HALF = 2.0**30
ONE_BITS = 0x3F800000  # float32 1.0: (23 random bits | ONE_BITS) viewed as float32 is 1 + k 2^-23
BELOW_ONE = 1 - 2.0**-24  # ... minus this: (k + 1/2) 2^-23, the midpoints of 2^23 cells of (0, 1), exactly
_MINUS_HALF = {}  # (device, dtype) -> the scalar tensor -1/2 (torch.add(-1/2, h, alpha=1/2): (h - 1)/2 in one pass)


def _class_half(count):
    """1 / (2q - 1), q = ceil(n/2), of counts n >= 0 (a floating tensor of exact integers), ATOM_HALF for n = 0
    (2q - 1 = -1 floored at 1 / ATOM_HALF)."""
    return count.mul(0.5).ceil_().mul_(2.0).sub_(1.0).clamp_min_(1.0 / ATOM_HALF).reciprocal_()


def _positions(bits_a, bits_b, half, front, out, work):
    """out = c t sqrt(1 - U^e) cos(theta) (Ulrich's symmetric Beta; atoms at +-c t) of draws (R, N) whose radial
    uniform U is in the low RADIAL_BITS of ``bits_a`` and angle theta = pi V in the high 23 bits of ``bits_b``
    (int32), with ``half`` = 1 / (2q - 1) (float32, ATOM_HALF on the atoms); ``front`` (R, 1) = c t. float32; the
    inputs are overwritten (``work`` is a float32 buffer of their shape)."""
    key = (half.device, half.dtype)
    if key not in _MINUS_HALF:
        _MINUS_HALF[key] = torch.tensor(-0.5, dtype=half.dtype, device=half.device)
    u = bits_a.bitwise_and_(2**RADIAL_BITS - 1).bitwise_or_(ONE_BITS).view(torch.float32).sub_(BELOW_ONE)
    h = u.log_().mul_(half).tanh_()
    radius = h.div_(torch.add(_MINUS_HALF[key], h, alpha=0.5, out=work)).sqrt_()  # 2h / (h - 1) = 1 - U^e
    angle = bits_b.bitwise_right_shift_(31 - RADIAL_BITS).bitwise_or_(ONE_BITS).view(torch.float32).sub_(BELOW_ONE)
    radius.mul_(angle.mul_(math.pi).cos_()).mul_(half.clamp_min_(1.0)).clamp_(-1.0, 1.0)
    return torch.mul(radius, front, out=out)


def _positions_float64(half, front, out, generator):
    """As _positions in float64, with full-precision uniforms U and V (uniform_open) for the radius and the angle."""
    h = uniform_open(out.shape, torch.float64, out.device, generator).log_().mul_(half).tanh_()
    radius = h.div_(h.mul(0.5).sub_(0.5)).sqrt_()
    angle = uniform_open(out.shape, torch.float64, out.device, generator).mul_(math.pi).cos_()
    radius.mul_(angle).mul_(half.clamp_min(1.0)).clamp_(-1.0, 1.0)
    return torch.mul(radius, front, out=out)


def diffusive_radius(exponential, rate, steps):
    """sqrt(1 - R^2) = sqrt(v (2 - v)) of diffusive rows (module constants above): ``exponential`` (R, N) = -log U,
    ``rate`` (R, 1) = a t > DIFFUSIVE_MIN_RATE in the same dtype. v solves psi(v) = rate v - log1p(v / (2 (1 - v)))
    = -log U; psi = (rate - 1/2) v - (3/8) v^2 - ... is concave, so Newton's ``steps`` from the series' two terms
    v0 = e + (3/8) e^2 / (rate - 1/2), e = -log U / (rate - 1/2), stay below the root and converge to it."""
    shifted = rate - 0.5
    v = exponential / shifted
    v.addcmul_(v, v * (0.375 / shifted))
    for _ in range(steps):
        two_gap = torch.rsub(v, 2.0, alpha=2.0)  # 2 (1 - v)
        residual = torch.div(v, two_gap).log1p_().add_(exponential).addcmul_(v, rate, value=-1.0)  # -log U - psi(v)
        slope = torch.rsub(v, 2.0).mul_(two_gap).reciprocal_()  # 1 / (2 (1 - v)(2 - v)): psi' = rate - 2 slope
        v.addcdiv_(residual, torch.add(rate, slope, alpha=-2.0))
    return v.mul_(torch.rsub(v, 2.0)).sqrt_()


def _radius_series_table(terms):
    """Q (terms rows of terms floats): d_n = sum_j Q[n-1][j] eps^j, the coefficients of radius^2 = v (2 - v) =
    sum_n d_n e^n where v solves v (1 - eps h(v)) = e, h(v) = sum_{k>=2} a_k v^(k-1), a_k = (1 - 2^-k)/k
    (that is psi(v) / (a t - 1/2) = e, as log1p(v / (2 (1 - v))) = sum_k a_k v^k with a_1 = 1/2). Lagrange-Buermann:
    [e^n] F(v) = (1/n) [v^(n-1)] F'(v) (1 - eps h)^-n with F' = 2 - 2v and (1 - eps h)^-n = sum_j C(n+j-1, j) eps^j h^j."""
    a = [(1 - 2.0**-k) / k if k >= 2 else 0.0 for k in range(terms + 2)]
    h = [0.0] + [a[m + 1] for m in range(1, terms + 1)]  # coefficients of v^m
    powers = [[1.0] + [0.0] * terms]  # h^j, truncated at degree terms
    for _ in range(1, terms):
        last = powers[-1]
        powers.append([math.fsum(last[i] * h[m - i] for i in range(m)) for m in range(terms + 1)])
    return tuple(tuple(2.0 / n * math.comb(n + j - 1, j) * (powers[j][n - 1] - (powers[j][n - 2] if n >= 2 else 0.0))
                       if j < n else 0.0 for j in range(terms)) for n in range(1, terms + 1))


_RADIUS_SERIES = _radius_series_table(DIFFUSIVE_SERIES_TERMS)


def diffusive_series(rate):
    """(coefficients (R, K) float32 of radius^2 = 1 - R^2 = sum_n d_n e^n, inverse scale (R, 1) float32: e = -log U
    times it) of diffusive rows ``rate`` (R,) = a t > DIFFUSIVE_MIN_RATE (float64); K is the number of terms the
    rows need for DIFFUSIVE_SERIES_TOLERANCE at the largest float32 -log U."""
    scale = (rate - 0.5).reciprocal()  # eps
    powers = scale.unsqueeze(-1) ** torch.arange(DIFFUSIVE_SERIES_TERMS, dtype=rate.dtype, device=rate.device)
    table = torch.tensor(_RADIUS_SERIES, dtype=rate.dtype, device=rate.device)
    coefficients = powers @ table.t()  # d_n per row
    reach = (FLOAT32_LARGEST_EXPONENTIAL * scale).unsqueeze(-1) ** torch.arange(DIFFUSIVE_SERIES_TERMS, dtype=rate.dtype,
                                                                                 device=rate.device)
    large = (coefficients.abs() * reach / 2 >= DIFFUSIVE_SERIES_TOLERANCE).any(0)  # |d_n e^n| / (2 e) at the largest e
    terms = int(large.nonzero().max()) + 1 if bool(large.any()) else 1
    if terms == DIFFUSIVE_SERIES_TERMS:
        raise ValueError("kac_product: the diffusive radius series needs more terms than its table (a t too small)")
    return coefficients[:, :terms].to(torch.float32), scale.unsqueeze(-1).to(torch.float32)


def _diffusive_positions(bits_a, bits_b, coefficients, scale, front, out):
    """out = c t sqrt(1 - R^2) cos(theta) of diffusive rows, float32: -log U from the low RADIAL_BITS of ``bits_a``
    (midpoints of 2^23 cells, as _positions), theta = pi V from the high 23 bits of ``bits_b``; (``coefficients``,
    ``scale``) from diffusive_series, ``front`` (R, 1) = c t (applied on its own: (c t)^2 folded into the
    coefficients would overflow float32 beyond c t = 1.8e19). The inputs are overwritten."""
    log_u = bits_a.bitwise_and_(2**RADIAL_BITS - 1).bitwise_or_(ONE_BITS).view(torch.float32).sub_(BELOW_ONE).log_()
    radius = diffusive_series_radius(log_u, coefficients, scale)
    angle = bits_b.bitwise_right_shift_(31 - RADIAL_BITS).bitwise_or_(ONE_BITS).view(torch.float32).sub_(BELOW_ONE)
    return torch.mul(radius, angle.mul_(math.pi).cos_().mul_(front), out=out)


def diffusive_series_radius(log_u, coefficients, scale):
    """sqrt(1 - R^2) (R, N) float32 from log U (R, N) (overwritten) and diffusive_series' (coefficients, scale):
    sqrt(sum_n d_n e^n), e = -log U scale, by Horner's rule (one fused multiply-add per term)."""
    e = log_u.mul_(scale.neg())
    terms = coefficients.shape[1]
    if terms == 1:
        return e.mul_(coefficients).sqrt_()
    total = torch.addcmul(coefficients[:, terms - 2 : terms - 1], coefficients[:, terms - 1 :], e)
    for n in range(terms - 3, -1, -1):
        torch.addcmul(coefficients[:, n : n + 1], total, e, out=total)
    return total.mul_(e).sqrt_()


def _diffusive_positions_float64(rate, front, out, generator):
    """As _diffusive_positions in float64, with full-precision uniforms (uniform_open)."""
    exponential = uniform_open(out.shape, torch.float64, out.device, generator).log_().neg_()
    radius = diffusive_radius(exponential, rate, DIFFUSIVE_NEWTON_STEPS)
    radius.mul_(uniform_open(out.shape, torch.float64, out.device, generator).mul_(math.pi).cos_())
    return torch.mul(radius, front, out=out)


def _class_luts(classes, device, dtype):
    """(half in ``dtype``, atom-mask byte) per class 0 .. classes - 1 and for the sentinel class ``classes`` (a cell
    holding a class edge: half NaN, byte CODE_REFINE)."""
    half = _class_half(torch.arange(0, 2 * classes + 1, 2, dtype=torch.float64, device=device)).to(dtype)  # n = 2q
    half[-1] = math.nan
    code = torch.zeros(classes + 1, dtype=torch.uint8, device=device)
    code[0], code[-1] = 1, CODE_REFINE
    return half, code


def _class_tables(rate, dtype):
    """Two-level tables of the class q = ceil(n/2), n ~ Poisson(rate), rows (R,) (module constants above): returns
    (packed (R 2^8,) int32: cell << 8 | sub-bucket mask per bucket, the cells' half (float32) and atom-mask byte,
    refine: what the refinement of a CODE_REFINE cell needs), half in ``dtype`` (the output's). Class edges C_i = F(2 (q0 + i)) of the count CDF F in
    its window; classes below the window (q < q0) hold < 1e-36 of the mass. Counts of edges at or below a cell's
    start and below its end (poisson_bucket_counts, exact in float64) give its class range."""
    rows, device = rate.shape[0], rate.device
    start, size = poisson_window(rate)
    cdf = poisson_cdf(rate, start, size)
    first_class = (start + 1) >> 1
    columns = ((start & 1).unsqueeze(-1) + 2 * torch.arange((size + 1) // 2, device=device)).clamp_max_(size - 1)
    edges = cdf.gather(1, columns)  # 1 beyond the window
    low1, high1 = poisson_bucket_counts(edges, 2**BUCKET_BITS, torch.float32)
    multi = (low1 != high1).view(-1)
    multi_index = multi.nonzero().squeeze(-1)
    level1, count = rows * 2**BUCKET_BITS, multi_index.numel()
    classes = int(first_class.max()) + edges.shape[1] + 1
    lut_half, lut_code = _class_luts(classes, device, dtype)
    offset = first_class.to(torch.float32).unsqueeze(-1)
    cell_class = torch.empty(level1 + count * SUB_BUCKETS, dtype=torch.int32, device=device)
    cell_class[:level1].view(rows, -1).copy_(low1 + offset)
    packed = torch.arange(0, level1 << 8, 2**8, dtype=torch.int32, device=device)
    multi_row = torch.div(multi_index, 2**BUCKET_BITS, rounding_mode="floor")
    multi_bucket = multi_index - multi_row * 2**BUCKET_BITS
    low2 = high2 = torch.empty(0, SUB_BUCKETS, device=device)
    if count:
        packed[multi_index] = torch.arange(level1, level1 + count * SUB_BUCKETS, SUB_BUCKETS, dtype=torch.int32,
                                           device=device).mul_(2**8).add_(SUB_BUCKETS - 1)
        # edges strictly inside a multi bucket j < 2^8 C < j + 1, at p = SUB_BUCKETS (2^8 C - j) in it
        scaled = edges * 2**BUCKET_BITS
        bucket = scaled.floor()
        flat_bucket = (torch.arange(0, level1, 2**BUCKET_BITS, device=device).unsqueeze(-1)
                       + bucket.clamp_max(2**BUCKET_BITS - 1).long())
        chosen = ((scaled > bucket) & multi[flat_bucket]).nonzero(as_tuple=True)
        target = torch.searchsorted(multi_index, flat_bucket[chosen]).mul_(SUB_BUCKETS + 1)  # the bucket's rank among multi
        position = (scaled[chosen] - bucket[chosen]) * SUB_BUCKETS
        ones = torch.ones(target.shape, dtype=torch.float32, device=device)

        def at_most(cell):  # per sub-bucket: the edges of the bucket at or before it (as poisson_bucket_counts)
            histogram = torch.zeros(count, SUB_BUCKETS + 1, dtype=torch.float32, device=device)
            histogram.view(-1).scatter_add_(0, target + cell.long(), ones)
            return histogram.cumsum_(1)[:, :SUB_BUCKETS]

        base = low1[multi_row, multi_bucket].unsqueeze(-1)
        low2, high2 = at_most(position.ceil()).add_(base), at_most(position.floor()).add_(base)
        level2 = cell_class[level1:].view(count, SUB_BUCKETS)
        level2.copy_(low2 + offset[multi_row])
        level2.masked_fill_(low2 != high2, classes)
    refine = (edges, first_class, multi_row, multi_bucket, low2, high2, level1)
    return packed, lut_code.index_select(0, cell_class), lut_half.index_select(0, cell_class), refine


def _refine_classes(refine, cells, generator):
    """Classes of draws in the CODE_REFINE cells ``cells`` (flat indices into _class_tables' cells): U uniform in the
    cell, (j + (s + V) / SUB_BUCKETS) / 2^8 with a fresh float64 V, and the class #{i: C_i <= U} + q0 found by
    bisection between the cell's edge counts (poisson_search). Returns (class, row within the table block)."""
    edges, first_class, multi_row, multi_bucket, low2, high2, level1 = refine
    multi = torch.div(cells - level1, SUB_BUCKETS, rounding_mode="floor").long()
    sub = (cells - level1).long() - multi * SUB_BUCKETS
    row = multi_row[multi]
    u = (multi_bucket[multi] + (sub + uniform_open(sub.shape, torch.float64, cells.device, generator)) / SUB_BUCKETS)
    index = poisson_search(edges, row, low2[multi, sub].long(), high2[multi, sub].long(), u / 2**BUCKET_BITS)
    return index + first_class[row], row


def _direct_poisson_on_cpu(device, generator):
    """torch.poisson (exact on CPU) serves rows without tables when the draws and the generator are on CPU."""
    return torch.device(device).type == "cpu" and (generator is None or generator.device.type == "cpu")


def _few_draws(draws, device, generator):
    """Whether rows of ``draws`` draws are better served by one torch.poisson call for all rows, whatever their a t:
    on CPU, while no row's table could pay (below MIN_TABLE_SIZE + 2^8 entries per row). The diffusive rows' own
    path pays from about the same size (a = 25, c = 2, EDM's training sigmas, B = 256: 2.6x torch.poisson's time
    at N = 2, 1.2x at 64, 0.94x at 256, 0.56x at 1024)."""
    return _direct_poisson_on_cpu(device, generator) and CPU_TABLE_ENTRIES_PER_DRAW * draws < MIN_TABLE_SIZE + 2**BUCKET_BITS


def _draw_counts(rate, draws, generator):
    """Poisson(rate) counts (float64), ``draws`` per row of ``rate`` (R,), by torch.poisson (CPU draws with a CPU
    generator only: _direct_poisson_on_cpu; elsewhere every row has tables)."""
    return torch.poisson(rate.unsqueeze(-1).expand(-1, draws).contiguous(), generator=generator)


def _fill_bits(buffer, generator):
    """random_bits31 into an int32 buffer, in place where the generator draws on the buffer's device."""
    if generator is None or generator.device == buffer.device:
        buffer.random_(generator=generator)
    else:
        buffer.copy_(random_bits31(buffer.shape, buffer.device, generator))


_REFINE_BYTES = int.from_bytes(bytes([CODE_REFINE]) * 8, "little")


def _refine_positions(codes):
    """Flat positions of the CODE_REFINE bytes of ``codes`` (uint8, 1-D): found among 8-byte words (one int64 pass and
    a nonzero over an eighth of the entries; they are rare) where the words are aligned, else by a plain nonzero."""
    if codes.numel() % 8 or codes.storage_offset() % 8:
        return (codes == CODE_REFINE).nonzero().squeeze(-1)
    words = codes.view(torch.int64).bitwise_and(_REFINE_BYTES).nonzero().squeeze(-1)
    if not words.numel():
        return words
    candidates = (words.unsqueeze(-1) * 8 + torch.arange(8, device=codes.device)).view(-1)
    return candidates[codes.index_select(0, candidates) == CODE_REFINE]


def _series_terms(y_max):
    """Terms of the I0 / I1 power series at y = z^2/4 <= y_max: past the peak (k^2 > y) each term shrinks by
    y / k^2 < 1, so stopping at a term below BESSEL_SERIES_TOLERANCE of the sum leaves a tail below ~2^-60."""
    term, total, k = 1.0, 1.0, 0
    while True:
        k += 1
        term *= y_max / (k * k)
        total += term
        if term <= BESSEL_SERIES_TOLERANCE * total and y_max <= (k + 1) ** 2:
            return k + 1


def _horner_pair(x, first, second, terms, scale):
    """(scale sum_k first[k] x^k, scale sum_k second[k] x^k), k < ``terms``, by Horner's rule with both series in
    one (2, n) tensor: one fused multiply-add (addcmul) per term for the pair (a multiply and an add, per series,
    cost about 4 times the passes over the data)."""
    coefficients = torch.tensor([first[:terms], second[:terms]], dtype=x.dtype, device=x.device)
    coefficients = coefficients.mul_(scale).t().unsqueeze(-1)  # (terms, 2, 1)
    flat = x.reshape(1, -1)
    if terms == 1:
        total = coefficients[0].expand(2, flat.shape[1]).clone()
    else:
        total = torch.addcmul(coefficients[terms - 2], coefficients[terms - 1], flat)
    for k in range(terms - 3, -1, -1):
        torch.addcmul(coefficients[k], total, flat, out=total)
    return total[0].view(x.shape), total[1].view(x.shape)


def bessel_series(y, y_max=None, scale=1.0):
    """(I0(z), I1(z)/z) at y = z^2/4 >= 0 (any shape; z <= BESSEL_SERIES_MAX_Z) by Horner's rule on the power
    series, with as many terms as y_max (default: max(y)) needs; both times ``scale`` (folded into the
    coefficients)."""
    terms = _series_terms(float(y.max()) if y_max is None else y_max)
    return _horner_pair(y, _I0_SERIES, _I1_SERIES, terms, scale)


def _asymptotic_terms(z_min):
    """Terms of the asymptotic series that reach 2^-55 relative for every z >= z_min: the k-th term is at most
    prod_{j<=k} (2j-1)^2 / (8 j z) for I0 and 3 times that for I1 (|4 - (2j-1)^2| <= 3 (2j-1)^2); 9 at z = 200."""
    bound, k = 3.0, 0
    while bound > 2.0**-55 and k < BESSEL_ASYMPTOTIC_TERMS - 1:
        k += 1
        bound *= (2 * k - 1) ** 2 / (8 * k * z_min)
    return k + 1


def _shifted_chebyshev_powers(degree):
    """Integer coefficients of u^k in T_j(2u - 1), j = 0 .. degree (T_(j+1) = 2 (2u - 1) T_j - T_(j-1))."""
    rows = [[1], [-1, 2]]
    for _ in range(2, degree + 1):
        step = [0] + [4 * c for c in rows[-1]]  # 4u T_j
        step = [a - 2 * b for a, b in zip(step, rows[-1] + [0])]  # - 2 T_j
        rows.append([a - b for a, b in zip(step, rows[-2] + [0, 0])])  # - T_(j-1)
    return rows[: degree + 1]


def economised_chebyshev(series):
    """(Coefficients of (1/z)^k, k < ECONOMISED_TERMS, all Chebyshev coefficients in u = BESSEL_SERIES_MAX_Z / z) of
    the asymptotic ``series`` sum_k series[k] / z^k on z >= BESSEL_SERIES_MAX_Z, by interpolation at ECONOMISED_NODES
    Chebyshev nodes of u in (0, 1) (sums by math.fsum: the coefficients carry the values' rounding, ~1e-17)."""
    nodes = ECONOMISED_NODES

    def cosine(multiple):  # cos(multiple pi / (2 nodes)), the integer argument reduced first (no rounded j theta)
        return math.cos(math.pi * (multiple % (4 * nodes)) / (2 * nodes))

    values = [math.fsum(c * ((0.5 + 0.5 * cosine(2 * k + 1)) / BESSEL_SERIES_MAX_Z) ** n for n, c in enumerate(series))
              for k in range(nodes)]
    chebyshev = [(1.0 if j == 0 else 2.0) / nodes * math.fsum(v * cosine(j * (2 * k + 1)) for k, v in enumerate(values))
                 for j in range(nodes)]
    powers = _shifted_chebyshev_powers(ECONOMISED_TERMS - 1)
    kept = [math.fsum(chebyshev[j] * row[k] for j, row in enumerate(powers) if k < len(row)) for k in range(ECONOMISED_TERMS)]
    return tuple(c * BESSEL_SERIES_MAX_Z**k for k, c in enumerate(kept)), chebyshev


# one name per assignment: render.prune_runtime (and its test) follow single-name definitions, not tuple targets
_I0_ECONOMISED = economised_chebyshev(_I0_ASYMPTOTIC)[0]
_I1_ECONOMISED = economised_chebyshev(_I1_ASYMPTOTIC)[0]


def asymptotic_pair(two_pi_z, z_min, scale):
    """(P0, P1, (2 pi z)^-1/2, 1/z) at z = max(``two_pi_z`` / 2 pi, BESSEL_SERIES_MAX_Z) (``two_pi_z`` is
    overwritten), with e^-z I0(z) = P0 (2 pi z)^-1/2 and e^-z I1(z)/z = P1 (2 pi z)^-1/2 / z, both times ``scale``:
    the asymptotic series in 1/z, economised (ECONOMISED_TERMS terms) unless ``z_min`` is large enough for fewer
    plain terms."""
    # a reciprocal and a square root: float64 rsqrt is not vectorised on CPU (4x a sqrt's time, 2.3x the pair's)
    inverse = two_pi_z.clamp_min_(2 * math.pi * BESSEL_SERIES_MAX_Z).reciprocal_()  # 1 / (2 pi z)
    root = inverse.sqrt()
    inverse.mul_(2 * math.pi)  # 1/z
    terms = _asymptotic_terms(max(z_min, BESSEL_SERIES_MAX_Z))  # the plain series where it is the shorter
    if terms < ECONOMISED_TERMS:
        p0, p1 = _horner_pair(inverse, _I0_ASYMPTOTIC, _I1_ASYMPTOTIC, terms, scale)
    else:
        p0, p1 = _horner_pair(inverse, _I0_ECONOMISED, _I1_ECONOMISED, ECONOMISED_TERMS, scale)
    return p0, p1, root, inverse


def bessel_scaled(z, weight=None, scale=1.0):
    """(e^-z I0(z), e^-z I1(z)/z) for z >= 0, both times ``scale``: the asymptotic series in 1/z (economised:
    ECONOMISED_TERMS terms, below 2^-55 relative from z = BESSEL_SERIES_MAX_Z on; the plain series where min(z) is
    large enough for fewer terms) everywhere, then
    bessel_series times e^-z written over the entries below BESSEL_SERIES_MAX_Z that have a nonzero ``weight``
    (None: all; gathered: at large a t they are the few coordinates near the front; entries of zero weight keep
    finite placeholder values)."""
    z_min = float(z.min()) if z.numel() else BESSEL_SERIES_MAX_Z
    p0, p1, root, inverse = asymptotic_pair(z.mul(2 * math.pi), z_min, scale)
    i0e, i1e_over_z = p0.mul_(root), p1.mul_(root).mul_(inverse)
    # z < BESSEL_SERIES_MAX_Z where the weight is nonzero, in floating arithmetic (comparisons into bool tensors
    # cost several arithmetic passes on CPU)
    if z_min >= BESSEL_SERIES_MAX_Z:
        return i0e, i1e_over_z
    below = z.neg().add_(BESSEL_SERIES_MAX_Z).clamp_min_(0.0)
    below = (below if weight is None else below.mul_(weight)).reshape(-1).nonzero().squeeze(-1)
    if below.numel() > 0:
        z_below = z.reshape(-1).index_select(0, below)
        s0, s1 = bessel_series(z_below.square().mul_(0.25), BESSEL_SERIES_MAX_Z**2 / 4, scale)
        damping = z_below.neg_().exp_()
        i0e.view(-1).index_copy_(0, below, s0.mul_(damping))
        i1e_over_z.view(-1).index_copy_(0, below, s1.mul_(damping))
    return i0e, i1e_over_z


_VARIANCE_RATIOS = {}  # (device, dtype) -> the ratios -1 / (k + 2), k = 1 .. VARIANCE_SERIES_TERMS - 1


def _scaled_variance(x):
    """(g(x), e^{-x} - 1) for x >= 0 (float64), g(x) = e^{-x} - 1 + x: the variance's core (sigma^2 = (c^2 / 2a^2)
    g(2at)) and minus its derivative; g by its series below VARIANCE_SERIES_MAX_X (terms (-x)^k / (k+2)! as one
    cumulative product of the ratios -x / (k+2))."""
    key = (x.device, x.dtype)
    if key not in _VARIANCE_RATIOS:
        _VARIANCE_RATIOS[key] = torch.arange(3.0, VARIANCE_SERIES_TERMS + 2.0, dtype=x.dtype, device=x.device).reciprocal_().neg_()
    drop = torch.expm1(x.neg())
    small = x.clamp_max(VARIANCE_SERIES_MAX_X)
    series = (small.unsqueeze(-1) * _VARIANCE_RATIOS[key]).cumprod_(-1).sum(-1).add_(1.0).mul_(small.square_()).mul_(0.5)
    return torch.where(x < VARIANCE_SERIES_MAX_X, series, x + drop), drop


class KacProductFamily(torch.nn.Module):
    """N independent 1-D Kac laws with switching rate ``a`` and speed ``c``; ``atom_rtol`` sets the atom width."""

    def __init__(self, a, c, atom_rtol=1e-4):
        super().__init__()
        if not a > 0:
            raise ValueError(f"kac_product: `a` must be > 0, got {a}")
        if not c > 0:
            raise ValueError(f"kac_product: `c` must be > 0, got {c}")
        self.rate, self.speed, self.atom_rtol = float(a), float(c), float(atom_rtol)
        self.register_buffer("a", torch.tensor(float(a), dtype=torch.float64))
        self.register_buffer("c", torch.tensor(float(c), dtype=torch.float64))

    # ---- sampling

    def sample_displacement(self, t, shape, generator=None):
        """d (B, *shape) and the atom mask (B, *shape), the latent of the coupling (atoms move at +-c). Rows with
        a t > DIFFUSIVE_MIN_RATE draw Ulrich's radius from its closed-form law (_sample_diffusive), unless a row has
        few draws (_few_draws); the others draw switch classes (_sample_counted). Rows of both kinds in one batch
        are drawn as two groups."""
        batch, n = t.shape[0], math.prod(shape)
        device = t.device
        out = torch.empty(batch, n, dtype=t.dtype, device=device)
        atoms = torch.empty(batch, n, dtype=torch.bool, device=device)
        rate = self.rate * t.to(torch.float64)
        if _few_draws(n, device, generator):  # one torch.poisson call for all rows is cheaper
            self._sample_counted(t, rate, out, atoms, generator)
            return out.reshape(batch, *shape), atoms.reshape(batch, *shape)
        diffusive = rate > DIFFUSIVE_MIN_RATE
        any_diffusive = bool(diffusive.any())
        if not any_diffusive or bool(diffusive.all()):
            sampler = self._sample_diffusive if any_diffusive else self._sample_counted
            sampler(t, rate, out, atoms, generator)
        else:
            for group, sampler in ((diffusive, self._sample_diffusive), (~diffusive, self._sample_counted)):
                rows = group.nonzero().squeeze(-1)
                part = torch.empty(rows.numel(), n, dtype=out.dtype, device=device)
                part_atoms = torch.empty(rows.numel(), n, dtype=torch.bool, device=device)
                sampler(t.index_select(0, rows), rate.index_select(0, rows), part, part_atoms, generator)
                out.index_copy_(0, rows, part)
                atoms.index_copy_(0, rows, part_atoms)
        return out.reshape(batch, *shape), atoms.reshape(batch, *shape)

    def _sample_diffusive(self, t, rate, out, atoms, generator):
        """Fill out (R, N) with Kac positions of rows with a t > DIFFUSIVE_MIN_RATE (diffusive_radius; on CPU in row
        chunks of about CHUNK_ELEMENTS) and atoms with False (their mass e^{-a t} is dropped: module constants)."""
        batch, n = out.shape
        atoms.zero_()
        front = (self.speed * t).unsqueeze(-1)
        if out.dtype != torch.float32:
            _diffusive_positions_float64(rate.to(out.dtype).unsqueeze(-1), front, out, generator)
            return
        coefficients, scale = diffusive_series(rate)
        chunk_rows = batch if out.device.type != "cpu" else max(1, min(CHUNK_ELEMENTS // max(n, 1), batch))
        bits = torch.empty(2, chunk_rows, n, dtype=torch.int32, device=out.device)
        for first in range(0, batch, chunk_rows):
            rows = slice(first, min(first + chunk_rows, batch))
            chunk_bits = bits[:, : rows.stop - first]
            _fill_bits(chunk_bits, generator)
            _diffusive_positions(chunk_bits[0], chunk_bits[1], coefficients[rows], scale[rows], front[rows], out[rows])

    def _sample_counted(self, t, rate, out, atoms, generator):
        """Fill out (R, N) and atoms (R, N) for rows with a t <= DIFFUSIVE_MIN_RATE: each row's switch classes are
        read off its class tables where they pay (_table_rows, _class_tables), else come from Poisson counts drawn
        directly (torch.poisson); positions by _positions."""
        batch, n = out.shape
        device = out.device
        tabled, any_table = None, False  # no row's table can pay (small N): every count by torch.poisson
        if not _few_draws(n, device, generator):
            tabled = self._table_rows(rate, n, device, generator)
            any_table = bool(tabled.any())
        table_rate = torch.where(tabled, rate, torch.zeros_like(rate)) if any_table else None
        block_rows = batch  # one block without tables
        if any_table:
            block_rows = max(1, min(TABLE_BLOCK_ROWS, TABLE_ENTRIES // poisson_window(table_rate)[1]))
        chunk_rows = block_rows if device.type != "cpu" else max(1, min(CHUNK_ELEMENTS // max(n, 1), block_rows))
        chunk_rows = min(chunk_rows, batch)
        work = (torch.empty(2, chunk_rows, n, dtype=torch.int32, device=device),  # the two random words, one draw
                *(torch.empty(chunk_rows, n, dtype=dtype, device=device) for dtype in (torch.int32, out.dtype, torch.float32)))
        front = (self.speed * t).unsqueeze(-1)  # c t, applied per chunk (while it is in cache)
        for block_first in range(0, batch, block_rows):
            block_last = min(block_first + block_rows, batch)
            tables = None
            if any_table and bool(tabled[block_first:block_last].any()):
                tables = _class_tables(table_rate[block_first:block_last], out.dtype)
            refine_positions, refine_cells = [], []
            for first in range(block_first, block_last, chunk_rows):
                rows = slice(first, min(first + chunk_rows, block_last))
                found = self._sample_chunk(rate[rows], None if tables is None else tabled[rows], tables,
                                           first - block_first, front[rows], out[rows], atoms[rows], work, generator)
                if found is not None:
                    refine_positions.append(found[0] + first * n)
                    refine_cells.append(found[1])
            if refine_positions:  # the draws whose cell holds a class edge, all at once
                positions = torch.cat(refine_positions)
                classes, row = _refine_classes(tables[3], torch.cat(refine_cells), generator)
                self._write_draws(positions, classes, front.view(-1)[row + block_first], out, atoms, generator)

    @staticmethod
    def _table_rows(rate, draws, device, generator):
        """Rows (a t <= DIFFUSIVE_MIN_RATE) whose classes come from tables: every row off CPU, on CPU the rows whose
        tables pay (CPU_TABLE_ENTRIES_PER_DRAW); the others use torch.poisson."""
        if not _direct_poisson_on_cpu(device, generator):
            return torch.ones_like(rate, dtype=torch.bool)
        spread = 13.0 * torch.sqrt(rate)  # the width of poisson_window, per row
        size = torch.ceil(rate + spread + 30.0) - torch.floor((rate - spread - 10.0).clamp_min(0.0)) + 1
        return size + 2**BUCKET_BITS <= CPU_TABLE_ENTRIES_PER_DRAW * draws

    def _sample_chunk(self, rate, tabled, tables, block_row, front, out, atoms, work, generator):
        """Fill out (R, N) with Kac positions (front (R, 1) = c t) and atoms (R, N) with the atom mask; rows with
        ``tabled`` read ``tables`` (_class_tables of their block, these rows from ``block_row`` on), the others draw
        Poisson counts. Returns (flat positions, cells) of the draws left to refine (CODE_REFINE), or None."""
        rows, n = out.shape
        bits = work[0][:, :rows]
        _fill_bits(bits, generator)
        (bits_a, bits_b), (index, half, spare) = bits, (buffer[:rows] for buffer in work[1:])
        cell = spare.view(torch.int32)
        codes = atoms.view(torch.uint8)
        found = None
        if tables is not None:
            packed, code_table, half_table, _ = tables
            offsets = torch.arange(block_row << BUCKET_BITS, (block_row + rows) << BUCKET_BITS, 2**BUCKET_BITS,
                                   dtype=torch.int32, device=out.device)
            torch.bitwise_right_shift(bits_a, RADIAL_BITS, out=index).add_(offsets.unsqueeze(-1))  # row 2^8 + bucket
            torch.index_select(packed, 0, index.view(-1), out=cell.view(-1))
            sub = torch.bitwise_and(bits_b, 2**8 - 1, out=index).bitwise_and_(cell)  # s & (the bucket's sub mask)
            cell.bitwise_right_shift_(8).add_(sub)
            torch.index_select(code_table, 0, cell.view(-1), out=codes.view(-1))
            torch.index_select(half_table, 0, cell.view(-1), out=half.view(-1))
            refine = _refine_positions(codes.view(-1))
            if refine.numel():
                found = refine, cell.view(-1).index_select(0, refine)
        if tables is None:  # every count drawn directly (small N, or every a t too large for a table)
            count = _draw_counts(rate, n, generator).to(half.dtype)  # exact integers (< 2^24 in float32)
            torch.eq(count, 0.0, out=atoms)
            half = _class_half(count)
        elif not bool(tabled.all()):
            direct = (~tabled).nonzero().squeeze(-1)
            count = _draw_counts(rate[direct], n, generator)
            half.index_copy_(0, direct, _class_half(count).to(half.dtype))
            codes.index_copy_(0, direct, (count == 0).to(torch.uint8))
        if out.dtype == torch.float32:
            _positions(bits_a, bits_b, half, front, out, spare)
        else:
            _positions_float64(half, front, out, generator)
        return found

    @staticmethod
    def _write_draws(positions, classes, front, out, atoms, generator):
        """Kac positions of single draws of classes ``classes`` at the flat ``positions`` of out and atoms (fresh
        radial and angle bits: the class decision used none of them)."""
        half = _class_half(classes.to(torch.float64)).to(out.dtype)
        values = torch.empty(positions.shape, dtype=out.dtype, device=out.device)
        if out.dtype == torch.float32:
            bits = random_bits31((2, positions.numel()), out.device, generator)
            _positions(bits[0], bits[1], half, front, values, torch.empty_like(values))
        else:
            _positions_float64(half, front.to(out.dtype), values, generator)
        out.view(-1).index_copy_(0, positions, values)
        atoms.view(-1).index_copy_(0, positions, classes == 0)

    # ---- kernel, velocity

    def atom_width(self, t, dtype):
        """eps_atom(t) = atom_rtol c t + 32 eps(dtype): width of the regularised atoms (see module doc)."""
        return self.atom_rtol * self.speed * t + 32 * torch.finfo(dtype).eps

    def conditional_velocity(self, d, t, latent=None):
        """Per coordinate: d / (t + (r/c) I0(z)/I1(z)) inside the cone; with ``latent`` (the atom mask from
        sample_displacement: training targets) sign(d) c on the atoms and over the cone, |u| <= c exactly. Without
        it, the coordinates with |d| >= c t - eps_atom move with their share of the front, u = c d / (c t): +-c on the
        front, within [-c, c] up to it, and a coordinate that a discrete reverse step pushed over the cone is pulled
        in proportionally (d' = d t' / t under Euler) instead of keeping its overshoot down to t = 0 (the
        regularised atoms, normal bumps of mean +-c t and width ~ c t, are carried by u = d / t)."""
        t_b = batch_view(t, d)
        front = self.speed * t_b
        magnitude = d.abs()
        on_atom = latent if latent is not None else magnitude >= front - batch_view(self.atom_width(t, d.dtype), d)
        inside = (magnitude < front).logical_and_(~on_atom)
        d_in = d * inside  # 0 on and over the cone: r = c t > 0 there, so no NaN gradient from the sqrt
        magnitude = d_in.abs()
        z = (front - magnitude).mul_(front + magnitude).sqrt_().mul_(self.rate / self.speed)
        # (r/c) I0(z)/I1(z) = i0e(z) z / (a i1e(z)), -> 2/a as z -> 0 (z > 0 unless c t underflows: floored)
        z_floor = z.clamp_min(torch.finfo(z.dtype).tiny)
        denominator = torch.special.i0e(z).mul_(z_floor).div_(torch.special.i1e(z_floor).mul_(self.rate)).add_(t_b)
        interior = torch.div(d_in, denominator).clamp_(-self.speed, self.speed)
        if latent is None:
            return torch.where(inside, interior, self._front_velocity(d, front))
        return torch.where(inside, interior, torch.sign(d).mul_(self.speed))  # +-c on and over the cone

    def log_kernel(self, d, t):
        """sum over coordinates of log[p_ac(d_i) + atoms regularised as normal bumps] (module doc); the sum is
        accumulated in float64."""
        t_b = batch_view(t, d)
        front = self.speed * t_b
        at = self.rate * t_b
        inside = d.abs() < front
        d_in = torch.where(inside, d, torch.zeros_like(d))
        r = torch.sqrt((front - d_in.abs()) * (front + d_in.abs()))
        z = self.rate / self.speed * r
        # log[(a e^{-at}/2c)(I0(z) + a t I1(z)/z)], with z - a t = -(a/c) d^2 / (c t + r) (no cancellation)
        log_ac = (
            math.log(self.rate / (2 * self.speed)) - self.rate / self.speed * d_in.square() / (front + r)
            + torch.log(torch.special.i0e(z) + at * i1e_over_x(z))
        )
        log_ac = torch.where(inside, log_ac, torch.full_like(log_ac, -math.inf))
        width = batch_view(self.atom_width(t, d.dtype), d)
        distance = (d.abs() - front) / width
        log_atom = -at - math.log(2) - 0.5 * math.log(2 * math.pi) - torch.log(width) - 0.5 * distance.square()
        return torch.logaddexp(log_ac, log_atom).sum(tuple(range(1, d.dim())), dtype=torch.float64).to(d.dtype)

    def log_kernel_and_velocity(self, d, t):
        """(log_kernel(d, t), conditional_velocity(d, t)) with r, z and the Bessel values computed once: what
        Process.marginal_velocity needs per (sample, data point) pair (the same values as the two calls, to rounding;
        tested). Rows are processed in blocks of about BESSEL_SERIES_BLOCK coordinates, so that the temporaries of
        the elementwise passes stay in cache; no torch.where / logaddexp / bool masks (several times the cost of an
        arithmetic pass on CPU): masks are applied by multiplying with 0/1 (each product exact), the factor a/2c
        is folded into the Bessel series' coefficients (_horner_pair: both series, one fused multiply-add per term),
        and the atoms' velocity c d / (c t) is blended in by a 0/1 factor (_atom_velocity).
        - a t <= SERIES_BLOCK_MAX_RATE (_series_block): unscaled I0, I1/z from bessel_series and
          e^{a t} p = (a/2c) (I0(z) + a t I1(z)/z) inside + e^u, u = -(|d| - c t)^2 / (2 eps_atom^2) - log(2 sqrt(2 pi) eps_atom);
          e^u is floored at e^-700 (below it the atom bump is lost against the a.c. part inside the cone) and the cut
          is added back in log space outside the cone, where the bump is all there is (finite scores over the cone).
        - larger a t (_scaled_block): e^-z I0(z), e^-z I1(z)/z (bessel_scaled), log p_ac as in log_kernel and the atom
          bump added by the log-sum-exp max + log(1 + e^-|difference|).
        Blocks mostly over the cone (small a t) take the Bessel work on their inside coordinates only (_sparse_block);
        dense blocks at a t <= DEFER_MAX_RATE leave their few coordinates near the front or with z below
        BESSEL_SERIES_MAX_Z to one pass at the end (_settle_edges)."""
        flat = d.reshape(d.shape[0], -1)
        log_kernel = torch.empty(d.shape[0], dtype=torch.float64, device=d.device)
        velocity = torch.empty_like(flat)
        widths = self.atom_width(t, d.dtype)
        max_rate = self.rate * float(t.max()) if t.numel() else 0.0  # z = (a/c) r <= a t
        block_of = self._series_block if max_rate <= SERIES_BLOCK_MAX_RATE else self._scaled_block
        rows = max(1, BESSEL_SERIES_BLOCK // max(1, flat.shape[1]))
        sparse = True  # until a block has more than SPARSE_MAX_INSIDE of its coordinates inside the cone
        edges = []  # (flat indices, placeholder log p) deferred by dense blocks
        defer = block_of == self._scaled_block and max_rate <= DEFER_MAX_RATE
        for first in range(0, flat.shape[0], rows):
            block = slice(first, first + rows)
            arguments = (flat[block], t[block], widths[block], max_rate**2 / 4, velocity[block])
            if sparse:
                log_kernel[block], sparse = self._sparse_block(block_of, *arguments)
            elif defer:
                before = len(edges)
                log_kernel[block], _ = self._scaled_block(*arguments, edges=edges, offset=first * flat.shape[1])
                deferred = edges[-1][0].numel() if len(edges) > before else 0
                defer = deferred <= EDGE_MAX_SHARE * arguments[0].numel()
            else:
                log_kernel[block], _ = block_of(*arguments)
        if edges:
            self._settle_edges(flat, t, widths, max_rate**2 / 4, edges, log_kernel, velocity)
        return log_kernel.to(d.dtype), velocity.view(d.shape)

    def _settle_edges(self, flat, t, widths, y_max, edges, log_kernel, velocity):
        """The coordinates that dense _scaled_block calls deferred (near the front, over it, or with z below
        BESSEL_SERIES_MAX_Z): all at once, each as a row of one coordinate through _scaled_block's exact path; their
        velocity overwrites the placeholder and the rows' sums of log p gain (exact - placeholder). One pass over
        the few such coordinates of every block instead of a dozen small operations per block."""
        index = torch.cat([found for found, _ in edges])
        placeholder = torch.cat([value for _, value in edges])
        row = torch.div(index, flat.shape[1], rounding_mode="floor")
        values = torch.empty(index.numel(), 1, dtype=flat.dtype, device=flat.device)
        exact, _ = self._scaled_block(flat.reshape(-1).index_select(0, index).unsqueeze(-1), t.index_select(0, row),
                                      widths.index_select(0, row), y_max, values)
        velocity.view(-1).index_copy_(0, index, values.view(-1))
        log_kernel.index_add_(0, row, exact.sub_(placeholder))

    def _sparse_block(self, block_of, d, t, width, y_max, out):
        """(sum of log p in float64, whether the block was sparse) of the rows d (R, N), velocity written into
        ``out``. Over the cone (|d| >= c t) log p is the atom bump's, -(|d| - c t)^2 / (2 eps^2) - log(2 sqrt(2 pi)
        eps) - a t, and the velocity c d / (c t) (_front_velocity): a few passes for every coordinate; ``block_of``
        then runs on the coordinates inside the cone only (gathered as rows of one coordinate), the many at small a t. Where more
        than SPARSE_MAX_INSIDE of them are inside, the gather costs more than it saves: ``block_of`` runs on the
        whole block instead (and the caller stops trying)."""
        t_b, width_b = t.unsqueeze(-1), width.unsqueeze(-1)
        gap = self.speed * t_b - d.abs()
        inside = gap.clamp_min(0.0).view(-1).nonzero().squeeze(-1)
        if inside.numel() > SPARSE_MAX_INSIDE * d.numel():
            return block_of(d, t, width, y_max, out)[0], False
        scaled_gap = gap.div_(width_b)
        offset = torch.log(width_b * (2 * math.sqrt(2 * math.pi))).add_(t_b * self.rate).neg_()
        log_p = torch.addcmul(offset, scaled_gap, scaled_gap, value=-0.5)
        torch.div(d, self.speed * t_b, out=out).mul_(self.speed)  # _front_velocity
        if inside.numel() > 0:
            row = torch.div(inside, d.shape[1], rounding_mode="floor")
            values = torch.empty(inside.numel(), 1, dtype=d.dtype, device=d.device)
            log_inside, _ = block_of(d.reshape(-1).index_select(0, inside).unsqueeze(-1), t.index_select(0, row),
                                     width.index_select(0, row), y_max, values)
            log_p.view(-1).index_copy_(0, inside, log_inside.to(log_p.dtype))
            out.view(-1).index_copy_(0, inside, values.view(-1))
        return log_p.sum(-1, dtype=torch.float64), True

    def _front_velocity(self, d, front):
        """c d / (c t): the velocity without a latent on the atoms and over the cone (conditional_velocity); the
        quotient is exactly +-1 on the front, so +-c there."""
        return torch.div(d, front).mul_(self.speed)

    def _interior_velocity(self, d, i1_over_z, total, out):
        """d / (t + (r/c) I0(z)/I1(z)) = a d (I1(z)/z) / (I0(z) + a t I1(z)/z), clamped to [-c, c], into ``out``;
        ``i1_over_z`` and ``total`` = I0 + a t I1/z may share any scaling (both times (a/2c), e^-z or (2 pi z)^1/2).
        One division per coordinate, by the sum the log density uses (a float64 division costs several products)."""
        return torch.mul(i1_over_z, d, out=out).div_(total).mul_(self.rate).clamp_(-self.speed, self.speed)

    def _atom_velocity(self, d, interior, magnitude, front, width):
        """The velocity from its interior value d / (t + (r/c) I0/I1) (``interior`` from _interior_velocity, already
        clamped to [-c, c]; overwritten), and c d / (c t) on the atoms and beyond, |d| >= c t - eps_atom
        (conditional_velocity without a latent), by torch.lerp with the weight sign(|d| - (c t - eps)) + 1 clamped to
        1 (1 there, 0 inside: no torch.where; lerp returns either end exactly at weights 0 and 1)."""
        on_atom = (magnitude - (front - width)).sign_().add_(1.0).clamp_max_(1.0)
        return torch.lerp(interior, self._front_velocity(d, front), on_atom, out=interior)

    def _scaled_block(self, d, t, width, y_max, out, edges=None, offset=0):
        """(sum of log p in float64, velocity written into ``out``) of the rows d (R, N) at times t (R,), any a t
        (log_kernel_and_velocity). Every coordinate gets log p_ac = (z - a t) + log[(a/2c)(i0e + a t i1e/z)] and the
        interior velocity; the few within ATOM_REACH atom widths of the front or beyond it (gathered) then get the
        atom bump added (log-sum-exp) and, on the atoms and beyond, the velocity c d / (c t).
        With an ``edges`` list, those few and the coordinates with z < BESSEL_SERIES_MAX_Z keep finite
        placeholders here (the asymptotic series alone), and their flat indices (plus ``offset``) and placeholder
        log p are appended for _settle_edges."""
        t_b, width_b = t.unsqueeze(-1), width.unsqueeze(-1)
        front = self.speed * t_b
        at = self.rate * t_b
        magnitude = d.abs()
        gap = front - magnitude  # > 0 inside the cone
        r = (front + magnitude).mul_(gap).clamp_min_(0.0).sqrt_()
        near = gap.sub(ATOM_REACH * width_b)
        if edges is not None:  # near the front or z < BESSEL_SERIES_MAX_Z, i.e. r < BESSEL_SERIES_MAX_Z c / a
            near = torch.minimum(near, r - BESSEL_SERIES_MAX_Z * self.speed / self.rate, out=near)
        near = torch.lt(near, 0.0).view(-1).nonzero().squeeze(-1)  # (a bool mask: about half the nonzero's time)
        if edges is not None:  # the asymptotic series alone; (2 pi z)^-1/2 cancels from the velocity
            two_pi_z = r.mul(2 * math.pi * self.rate / self.speed)
            p0, p1, root, inverse = asymptotic_pair(two_pi_z, float(r.min()) * self.rate / self.speed,
                                                    self.rate / (2 * self.speed))
            q1 = p1.mul_(inverse)
            total = torch.addcmul(p0, at, q1)
            velocity = self._interior_velocity(d, q1, total, out)
            log_p = total.mul_(root).log_()
            log_p.addcdiv_(magnitude.square(), r.add_(front), value=-self.rate / self.speed)
            if near.numel():
                edges.append((near + offset, log_p.view(-1).index_select(0, near)))
            return log_p.sum(-1, dtype=torch.float64), velocity
        inside = gap.sign().clamp_min_(0.0) if near.numel() else None  # (outside the cone: only where near)
        # (a/2c) e^-z I0(z), (a/2c) e^-z I1(z)/z
        i0e, i1e_over_z = bessel_scaled(r * (self.rate / self.speed), inside, self.rate / (2 * self.speed))
        # log p_ac, z - a t = -(a/c) d^2 / (c t + r) (no cancellation); finite placeholders outside the cone
        total = torch.addcmul(i0e, at, i1e_over_z)
        velocity = self._interior_velocity(d, i1e_over_z, total, out)
        log_p = total.log_()
        log_p.addcdiv_(magnitude.square(), r.add_(front), value=-self.rate / self.speed)
        if near.numel():
            row = torch.div(near, d.shape[1], rounding_mode="floor")
            d_near, gap_near = d.reshape(-1).index_select(0, near), gap.view(-1).index_select(0, near)
            width_near, t_near = width.index_select(0, row), t.index_select(0, row)
            log_ac = torch.where(gap_near > 0, log_p.view(-1).index_select(0, near), -math.inf)
            log_atom = (-0.5 * (gap_near / width_near).square() - self.rate * t_near
                        - torch.log(width_near * (2 * math.sqrt(2 * math.pi))))
            log_p.view(-1).index_copy_(0, near, torch.logaddexp(log_ac, log_atom))
            on_atom = gap_near <= width_near  # |d| >= c t - eps_atom
            velocity_near = velocity.view(-1).index_select(0, near)
            front_near = self.speed * t_near
            velocity.view(-1).index_copy_(0, near, torch.where(on_atom, self._front_velocity(d_near, front_near), velocity_near))
        return log_p.sum(-1, dtype=torch.float64), velocity

    def _series_block(self, d, t, width, y_max, out):
        """(sum of log p in float64, velocity written into ``out``) of the rows d (R, N) at times t (R,),
        a t <= SERIES_BLOCK_MAX_RATE."""
        t_b, width = t.unsqueeze(-1), width.unsqueeze(-1)
        front = self.speed * t_b
        at = self.rate * t_b
        magnitude = d.abs()
        gap = front - magnitude  # > 0 inside the cone
        y = (front + magnitude).mul_(gap).clamp_min_(0.0).mul_((self.rate / self.speed) ** 2 / 4)
        # (a/2c) I0(z), (a/2c) I1(z)/z; on and outside the cone y = 0: finite values, masked below
        i0, i1_over_z = bessel_series(y, y_max, self.rate / (2 * self.speed))
        inside = gap.sign().clamp_min_(0.0)
        # u: log of the atom bump times e^{a t}, -(|d| - c t)^2 / (2 eps^2) - log(2 sqrt(2 pi) eps)
        scaled_gap = gap.mul_(width.reciprocal())  # per row: a product per coordinate instead of a division
        u = torch.addcmul(torch.log(width * (2 * math.sqrt(2 * math.pi))).neg_(), scaled_gap, scaled_gap, value=-0.5)
        u_floor = u.clamp_min(-700.0)
        total = torch.addcmul(i0, at, i1_over_z)
        interior = self._interior_velocity(d, i1_over_z, total, out)
        density = total.mul_(inside).add_(u_floor.exp())
        log_p = density.log_().add_(u.sub_(u_floor).mul_(1 - inside)).sub_(at)
        return log_p.sum(-1, dtype=torch.float64), self._atom_velocity(d, interior, magnitude, front, width)

    # ---- noise alignment: sigma^2 = Var K_t = (c^2/a) [t - (1 - e^{-2at}) / (2a)] = (c^2 / 2a^2) g(2at)
    # These run on (B,) tensors in every training step: per-call overhead dominates, so each is a few ops, in
    # place where a Python scalar is involved (out of place, torch converts the scalar to a tensor first).

    def sigma(self, t):
        core, _ = _scaled_variance(t.to(torch.float64).mul(2 * self.rate))
        return core.sqrt_().mul_(self.speed / (math.sqrt(2) * self.rate)).to(t.dtype)

    def dsigma_dt(self, t):
        """(c^2 / a) (1 - e^{-2at}) / (2 sigma) = (c / sqrt 2) (1 - e^{-x}) / sqrt(g(x))."""
        core, drop = _scaled_variance(t.to(torch.float64).mul(2 * self.rate))
        return drop.div_(core.sqrt_()).mul_(-self.speed / math.sqrt(2)).to(t.dtype)

    def t_of_sigma(self, sigma):
        """Inverse of sigma(t), through g(x) = q = 2 a^2 sigma^2 / c^2 (x = 2at; independent of a and c): Newton on
        log g(e^s) = log q in s = log x (slope x (1 - e^{-x}) / g between 1 and 2, concave: after the first step
        the iterates approach the root from below), T_OF_SIGMA_STEPS steps from x0 = q + (u + alpha u^2) /
        (1 + (alpha + 1/3) u + alpha u^2), u = sqrt(2 q), which has x's two limits sqrt(2q) + q/3 and q + 1 and is
        within 1.2% of x everywhere (tests compare with an mpmath inversion from 1e-10 to 1e10 and a, c over 7
        decades)."""
        q = sigma.to(torch.float64).square().mul_(2 * (self.rate / self.speed) ** 2).clamp_(1e-300, 1e300)
        u = q.mul(2.0).sqrt_()
        alpha_u = u.mul(T_OF_SIGMA_GUESS)
        x = (alpha_u + 1.0).mul_(u).div_(alpha_u.add_(T_OF_SIGMA_GUESS + 1 / 3).mul_(u).add_(1.0)).add_(q)
        for _ in range(T_OF_SIGMA_STEPS):  # s -= step, as x *= e^-step (relative rounding 1 ulp at any |log x|)
            core, drop = _scaled_variance(x)  # drop = -(1 - e^-x): the step's sign folded in
            x = x * core.div(q).log_().mul_(core).div_(drop.mul_(x)).exp_()  # log(g/q): no |log q| eps
        return x.mul_(0.5 / self.rate).to(sigma.dtype)
