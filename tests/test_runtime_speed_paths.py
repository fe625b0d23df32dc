"""The fast paths of the torch runtime (issue 11) against slow references: t(sigma) and dsigma/dt of the Kac
family against an mpmath inversion, and the chunked, memory-bounded Process.marginal_velocity against
itself unchunked and within its memory bound."""
import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from test_generated_scripts import generated_modules, module_ir, write_module
from test_runtime_torch import kac_reference_sample

torch = pytest.importorskip("torch")
mpmath = pytest.importorskip("mpmath")

from pde2gen.families.kac_product.runtime import KacProductFamily
from pde2gen.families.stable.runtime import StableFamily

F64 = torch.float64


# ------------------------------------------------------------------------------------------------
# Kac: t(sigma) by a converged Newton solve, dsigma/dt


def mp_kac_sigma(a, c, t):
    """sigma(t) = (c / sqrt(a)) sqrt(t - (1 - e^{-2at}) / (2a)) at 50 digits."""
    a, c, t = mpmath.mpf(a), mpmath.mpf(c), mpmath.mpf(t)
    return c / mpmath.sqrt(a) * mpmath.sqrt(t + mpmath.expm1(-2 * a * t) / (2 * a))


@pytest.mark.parametrize("a, c", [(9.0, 3.0), (25.0, 2.0), (1e-3, 1.0), (1e4, 0.1)])
def test_kac_t_of_sigma_and_derivative_match_mpmath(a, c):
    mpmath.mp.dps = 50
    family = KacProductFamily(a=a, c=c)
    sigma = torch.logspace(-10, 10, 41, dtype=F64)
    t = family.t_of_sigma(sigma)
    t_mp = [mpmath.findroot(lambda s, v=float(v): mp_kac_sigma(a, c, mpmath.exp(s)) - v,
                            mpmath.log(float(u))) for v, u in zip(sigma, t)]
    reference = np.array([float(mpmath.exp(s)) for s in t_mp])
    np.testing.assert_allclose(t.numpy(), reference, rtol=1e-13)
    derivative = np.array([float(mpmath.diff(lambda s: mp_kac_sigma(a, c, s), mpmath.mpf(float(v))))
                           for v in t[::4]])
    np.testing.assert_allclose(family.dsigma_dt(t[::4]).numpy(), derivative, rtol=1e-12)
    # a single value converges alone as in the batch (the loop stops when the whole batch has converged)
    assert float(family.t_of_sigma(sigma[22:23])) == pytest.approx(reference[22], rel=1e-13)


@pytest.mark.parametrize("kappa, c, m", [(1.0, 1.0, 0.0), (0.5, 2.0, 1.5), (1e-3, 1.0, 100.0), (10.0, 0.1, 1e-3)])
def test_heat_nig_t_of_sigma_closed_form_matches_mpmath(kappa, c, m):
    """heat_nig inverts sigma^2(t) = 2 kappa t + (c t)^2 / (1 + m c t) in closed form: the root agrees with an
    mpmath solve at 50 digits from sigma = 1e-8 to 1e8, on both sides of the branch switch b = 0."""
    from pde2gen.families.heat_nig.runtime import HeatNIGFamily

    mpmath.mp.dps = 50
    family = HeatNIGFamily(kappa=kappa, c=c, m=m)
    sigma = torch.logspace(-8, 8, 33, dtype=F64)
    t = family.t_of_sigma(sigma)
    kappa_mp, c_mp, m_mp = (mpmath.mpf(v) for v in (kappa, c, m))

    def sigma2(s):
        tau = c_mp * mpmath.exp(s)
        return 2 * kappa_mp * mpmath.exp(s) + tau**2 / (1 + m_mp * tau)

    reference = np.array([float(mpmath.exp(mpmath.findroot(lambda s, v=float(v): mpmath.log(sigma2(s)) - 2 * mpmath.log(v),
                                                            mpmath.log(float(u))))) for v, u in zip(sigma, t)])
    np.testing.assert_allclose(t.numpy(), reference, rtol=1e-13)


@pytest.mark.parametrize("alpha", [1 / 16, 1.0, 1.5, 31 / 16])
def test_heat_stable_t_of_sigma_matches_mpmath(alpha):
    """heat_stable's Newton in log t: sigma^2(t) = 2 kappa t + 2 median(S) (kappa2 t)^(2/alpha) inverted to
    rounding (50-digit mpmath root) from sigma = 1e-6 to 1e6, for the steepest and the flattest stable parts."""
    from pde2gen.families.heat_stable.runtime import HeatStableFamily

    mpmath.mp.dps = 50
    family = HeatStableFamily(kappa=1.0, kappa2=2.0, alpha=alpha)
    sigma = torch.logspace(-6, 6, 25, dtype=F64)
    t = family.t_of_sigma(sigma)
    stable = 2 * mpmath.mpf(float(family.median_s)) * mpmath.mpf(2.0) ** (2 / mpmath.mpf(alpha))

    def log_sigma2(u):
        return mpmath.log(2 * mpmath.exp(u) + stable * mpmath.exp(2 / mpmath.mpf(alpha) * u))

    reference = np.array([float(mpmath.exp(mpmath.findroot(lambda u, v=float(v): log_sigma2(u) - 2 * mpmath.log(v),
                                                            mpmath.log(float(w))))) for v, w in zip(sigma, t)])
    np.testing.assert_allclose(t.numpy(), reference, rtol=1e-13)


def test_subordinator_sum_t_of_sigma_matches_mpmath():
    """subordinator_sum takes a cubic piece of log t against log sigma^2 and one Newton step (the Newton solve from
    the components' own inverses outside the table): heat + two stables + an NIG part inverted to rounding (50-digit
    mpmath root) from sigma = 1e-14 to 1e14, inside and outside the table."""
    import pde2gen.families.subordinator_sum as declaration
    from pde2gen.families.subordinator_sum.runtime import SubordinatorSumFamily

    mpmath.mp.dps = 50
    params = dict.fromkeys(declaration.PARAMETERS, 0.0) | {f"alpha_{j}": 1.0 for j in (1, 2, 3)}
    params |= {"kappa": 1.0, "kappa_1": 1.0, "alpha_1": 1.0, "kappa_2": 2.0, "alpha_2": 1.5, "c_1": 0.5, "m_1": 2.0}
    family = SubordinatorSumFamily(**params)
    sigma = torch.logspace(-14, 14, 57, dtype=F64)
    t = family.t_of_sigma(sigma)
    stable_terms = [(2 * mpmath.exp(mpmath.mpf(log_median)), mpmath.mpf(coefficient), 2 / mpmath.mpf(alpha))
                    for (coefficient, alpha), log_median in zip(family.stables, family.log_medians)]

    def sigma2(u):
        time = mpmath.exp(u)
        tau = mpmath.mpf(0.5) * time
        return (2 * time + sum(scale * (coefficient * time) ** power for scale, coefficient, power in stable_terms)
                + tau**2 / (1 + 2 * tau))

    reference = np.array([float(mpmath.exp(mpmath.findroot(lambda u, v=float(v): mpmath.log(sigma2(u)) - 2 * mpmath.log(v),
                                                            mpmath.log(float(w))))) for v, w in zip(sigma, t)])
    np.testing.assert_allclose(t.numpy(), reference, rtol=1e-13)


@pytest.mark.parametrize("alpha", [1 / 16, 31 / 16])
def test_heat_stable_t_of_sigma_is_one_newton_step_from_its_table(alpha):
    """heat_stable's t_of_sigma reads runtime_common.log_time_table's cubic piece and takes one Newton step in t: on a
    dense grid through the heat-to-stable bend (sharpest at alpha = 1/16, where sigma^2 ~ t^32) that lands within
    1e-14 of the converged Newton solve (the table at spacing 1/32 left 3e-11 there)."""
    from pde2gen.families.heat_stable.runtime import HeatStableFamily

    family = HeatStableFamily(kappa=1.0, kappa2=2.0, alpha=alpha)
    sigma = torch.logspace(-5.9, 5.9, 4001, dtype=F64)
    root = family._newton_t_of_sigma2(sigma.square())
    assert float((family.t_of_sigma(sigma) / root - 1).abs().max()) < 1e-14


def _old_kanter_log_stable(beta, v, e):
    """log S by Kanter's formula term by term from the uniforms (v, e): the draw before the fused one."""
    g = beta / (1 - beta)
    near = torch.minimum(v, 1 - v) * math.pi
    log_a = (g * torch.log(torch.sin(beta * math.pi * v)) + torch.log(torch.sin((1 - beta) * math.pi * v))
             - torch.log(torch.sin(near)) / (1 - beta))
    return (log_a - torch.log(-torch.log(e))) / g


def _count_operations(call):
    from torch.utils._python_dispatch import TorchDispatchMode

    class Count(TorchDispatchMode):
        operations = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Count.operations += 1
            return func(*args, **(kwargs or {}))

    with Count():
        call()
    return Count.operations


def _composite_families():
    import pde2gen.families.subordinator_sum as declaration
    from pde2gen.families.heat_stable.runtime import HeatStableFamily
    from pde2gen.families.subordinator_sum.runtime import SubordinatorSumFamily

    params = dict.fromkeys(declaration.PARAMETERS, 0.0) | {f"alpha_{j}": 1.0 for j in (1, 2, 3, 4)}
    params |= {"kappa": 1.0, "kappa_1": 1.0, "alpha_1": 1.5, "c_1": 1.0}  # heat + 1.5-stable + Cauchy
    return {"heat_stable": HeatStableFamily(kappa=1.0, kappa2=2.0, alpha=1.5),
            "subordinator_sum": SubordinatorSumFamily(**params)}


@pytest.mark.parametrize("name", ["heat_stable", "subordinator_sum"])
def test_composite_training_draw_is_kanters_law_in_a_few_dozen_tensor_operations(name):
    """Issue 11 (training step <= 1.2x the heat module's at batch 256): at small batches each tensor operation's
    dispatch, not its arithmetic, is the cost, so the training draw of heat_stable and subordinator_sum (t(sigma),
    displacement with its latent, coupled velocity, sigma and dsigma/dt) is held to at most 125 operations (187
    and 166 before the fused paths; 88 and 117 with them). The fused Kanter draw keeps the law and the random
    stream: log S equals Kanter's formula term by term on the same two uniform draws (V first, then U')."""
    family = _composite_families()[name]
    batch = 256
    sigma = torch.exp(-1.2 + 1.2 * torch.randn(batch, generator=torch.Generator().manual_seed(1), dtype=F64))
    t = family.t_of_sigma(sigma).float()
    generator = torch.Generator().manual_seed(2)
    d, latent = family.sample_displacement(t, (2,), generator)  # warm: per-device tables built

    def draw():
        times = family.t_of_sigma(sigma).float()
        d, latent = family.sample_displacement(times, (2,), generator)
        family.conditional_velocity(d, times, latent)
        family.sigma(times)
        family.dsigma_dt(times)

    assert _count_operations(draw) <= 125
    uniforms = torch.Generator().manual_seed(3)
    v = torch.rand(batch, dtype=F64, generator=uniforms).clamp_min(2.0**-54)
    e = torch.rand(batch, dtype=F64, generator=uniforms).clamp_min(2.0**-54)
    if name == "heat_stable":
        drawn = family.sample_log_stable(torch.ones(batch, dtype=F64), torch.Generator().manual_seed(3))
    else:
        from pde2gen.families.runtime_common import sample_log_positive_stable

        tables = family._part_constants(torch.device("cpu"))["kanter"]
        drawn = sample_log_positive_stable(tables, (1, batch), torch.device("cpu"), torch.Generator().manual_seed(3))[0]
    assert torch.allclose(drawn, _old_kanter_log_stable(0.75, v, e), rtol=1e-13, atol=1e-13)


# ------------------------------------------------------------------------------------------------
# Process.marginal_velocity: chunking is exact, memory is bounded


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    return {family: write_module(module_ir(family, (6,)), tmp_path_factory.mktemp(family))
            for family in ("gaussian", "nig", "kac_product")}


@pytest.mark.parametrize("family", ["gaussian", "nig", "kac_product"])
def test_chunked_marginal_velocity_equals_unchunked(modules, family):
    generator = torch.Generator().manual_seed(0)
    with generated_modules(modules[family]) as generated:
        process = generated.process.Process(shape=(6,))
        data = torch.randn(37, 6, generator=generator, dtype=F64)
        x = data[:9] + 0.3 * torch.randn(9, 6, generator=generator, dtype=F64)
        t = process.t_of_sigma(torch.tensor(0.5, dtype=F64))
        whole = process.marginal_velocity(x, t, data, chunk_size=10_000)
        assert bool(torch.isfinite(whole).all()) and float(whole.abs().max()) > 0
        # data in chunks of 1 and 5 points, and blocks of 2 samples (the element budget shrunk)
        torch.testing.assert_close(process.marginal_velocity(x, t, data, chunk_size=1), whole, rtol=1e-12, atol=0)
        generated.process.MARGINAL_CPU_CHUNK_ELEMENTS = 12  # the CPU cap alone
        torch.testing.assert_close(process.marginal_velocity(x, t, data), whole, rtol=1e-12, atol=0)
        generated.process.MARGINAL_CPU_CHUNK_ELEMENTS = 1 << 19
        generated.process.MARGINAL_CHUNK_ELEMENTS = 12
        torch.testing.assert_close(process.marginal_velocity(x, t, data, chunk_size=5), whole, rtol=1e-12, atol=0)
        torch.testing.assert_close(process.marginal_velocity(x, t, data), whole, rtol=1e-12, atol=0)


@pytest.mark.parametrize("family", ["gaussian", "kac_product"])
def test_marginal_velocity_of_ten_thousand_references_in_image_dimension_stays_under_2_gb(tmp_path, family):
    """10,000 references x N = 3072 (float32 data: 123 MB) for 2 samples: the peak resident memory of the whole
    process (interpreter and torch included, about 0.3 GB) stays under 2 GB (Kac: its own blocked pair path)."""
    directory = write_module(module_ir(family, (3, 32, 32)), tmp_path)
    script = textwrap.dedent(f"""
        import json, resource, sys
        import torch
        torch.set_num_threads(1)
        sys.path.insert(0, {str(directory)!r})
        import process as module
        process = module.Process()
        data = torch.randn(10_000, 3, 32, 32)
        x = data[:2] + 0.1 * torch.randn(2, 3, 32, 32)
        velocity = process.marginal_velocity(x, 0.05, data)
        print(json.dumps({{"finite": bool(torch.isfinite(velocity).all()),
                          "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["finite"]
    assert result["peak_kib"] * 1024 < 2 * 1024**3, f"peak RSS {result['peak_kib'] / 2**20:.2f} GiB"
    assert math.isfinite(result["peak_kib"])


# ------------------------------------------------------------------------------------------------
# stable: the tabulated radial log-kernel against the quadrature


@pytest.mark.parametrize("alpha, n", [(1.5, 3072), (1.9, 3072), (0.5, 2)])
def test_stable_tabulated_log_kernel_matches_the_quadrature(alpha, n):
    """Chebyshev panels inside the table, closed-form tails outside it: |error| < 2e-7 in log p (absolute) at
    random radii over the table and 8 units beyond each end."""
    family = StableFamily(kappa=0.7, alpha=alpha)
    table = family._radial_table(n)
    log_k = table["low"] - 8 + (table["high"] - table["low"] + 16) * torch.rand(24, generator=torch.Generator().manual_seed(n), dtype=F64)
    log_k = torch.cat([log_k, torch.tensor([table["low"] - 0.5, table["high"] + 0.5], dtype=F64)])
    np.testing.assert_allclose(family.radial_log_kernel(n, log_k).numpy(),
                               family._radial_quadrature(n, log_k).numpy(), rtol=0, atol=2e-7)
    # and through log_kernel, on displacements at the sampler's scale
    t = torch.full((6,), 0.4, dtype=F64)
    d, _ = family.sample_displacement(t, (n,), generator=torch.Generator().manual_seed(1))
    np.testing.assert_allclose(family.log_kernel(d, t).numpy(), family.log_kernel_quadrature(d, t).numpy(),
                               rtol=0, atol=2e-7)


# ------------------------------------------------------------------------------------------------
# Kac sampling: the per-row choice of Poisson method (CDF tables, torch.poisson) draws the exact law


KAC_RATES = [1e-3, 0.1, 1.0, 9.0, 30.0, 64.5, 300.0, 1e4]  # 64.5, 300, 1e4: diffusive rows (no switch count)
KAC_KS_P = 1e-4  # per check; 3 x 8 x 2 checks: false-alarm rate below 4.8e-3 in all (fixed seeds: reproducible)


@pytest.mark.parametrize("n, dtype", [(2, torch.float64), (2000, torch.float32), (2000, torch.float64)])
def test_kac_sampler_draws_the_exact_law_from_small_to_huge_a_t(n, dtype):
    """a t from 1e-3 to 1e4, N = 2 (torch.poisson at every a t: few draws per row) and N = 2000 (tables up to
    a t = 64, above it the diffusive rows' closed-form radius: its float32 series and its float64 Newton steps):
    two-sample KS against the definition, and the atom fraction e^{-a t} (5 sigma)."""
    from scipy import stats

    a, c, draws = 9.0, 3.0, 32_000
    family = KacProductFamily(a=a, c=c)
    for index, rate in enumerate(KAC_RATES):
        t = rate / a
        times = torch.full((draws // n,), t, dtype=dtype)
        d, atoms = family.sample_displacement(times, (n,), generator=torch.Generator().manual_seed(100 + index))
        x = d.double().numpy().ravel()
        front = float(c * torch.tensor(t, dtype=dtype))  # c t as the sampler forms it in this dtype
        reference = kac_reference_sample(a, c, t, 60_000, index)
        reference = np.where(np.abs(reference) == c * t, np.sign(reference) * front, reference)
        assert stats.ks_2samp(x, reference).pvalue > KAC_KS_P, rate
        expected = math.exp(-rate)
        fraction = float(atoms.double().mean())
        assert abs(fraction - expected) <= 5 * math.sqrt(expected * (1 - expected) / x.size) + 1e-12, rate
        assert np.array_equal(np.abs(x[atoms.numpy().ravel()]), np.full(int(atoms.sum()), front))
        assert float(d.abs().max()) <= front


def test_kac_radius_law_closed_form_and_its_diffusive_part_match_the_switch_mixture():
    """Ulrich's radius R = U^(1/(2q-1)), q = ceil(n/2), mixed over n ~ Poisson(a t) (n = 0: R = 0, the atom):
    P(R <= y) = e^{-a t} [1 + sinh(a t y) + (cosh(a t y) - 1) / y] against the mixture summed term by term in
    mpmath, and the diffusive rows' form e^{-a t (1 - y)} (1 + 1/y) / 2 above it by at most e^{-a t} / y."""
    with mpmath.workdps(200):  # the gap, ~e^{-a t}, next to values of order e^{-a t (1 - y)}: e^-300 against e^-30
        for rate in (0.01, 1.0, 9.0, 64.0, 300.0):
            lam = mpmath.mpf(rate)
            for y in (mpmath.mpf("1e-6"), mpmath.mpf("0.3"), mpmath.mpf("0.9"), mpmath.mpf(1) - mpmath.mpf("1e-9")):
                terms = int(rate + 40 * math.sqrt(rate)) + 100  # the Poisson tail beyond: below e^-400
                mixture = mpmath.exp(-lam) * (1 + mpmath.fsum(lam**n / mpmath.factorial(n) * y ** (2 * ((n + 1) // 2) - 1)
                                                              for n in range(1, terms)))
                closed = mpmath.exp(-lam) * (1 + mpmath.sinh(lam * y) + (mpmath.cosh(lam * y) - 1) / y)
                assert abs(closed / mixture - 1) < mpmath.mpf("1e-40")
                diffusive = mpmath.exp(-lam * (1 - y)) * (1 + 1 / y) / 2
                assert 0 <= diffusive - closed <= mpmath.exp(-lam) / y


@pytest.mark.parametrize("dtype, ulps", [(torch.float32, 4), (torch.float64, 8)])
def test_kac_diffusive_radius_inverts_the_closed_form_law(dtype, ulps):
    """The diffusive rows' radius sqrt(v (2 - v)), v the root of a t v - log1p(v / (2 (1 - v))) = E, against mpmath:
    float64 rows by Newton's method (diffusive_radius), float32 rows by the Lagrange-inversion series
    (diffusive_series, diffusive_series_radius), a t from just above DIFFUSIVE_MIN_RATE to 1e7, E = -log U over every
    value the uniforms reach (float32: U >= 2^-24; float64: U >= 2^-54)."""
    from pde2gen.families.kac_product.runtime import (
        DIFFUSIVE_MIN_RATE,
        DIFFUSIVE_NEWTON_STEPS,
        diffusive_radius,
        diffusive_series,
        diffusive_series_radius,
    )

    largest = -math.log(2.0**-24 if dtype == torch.float32 else 2.0**-54)
    exponential = torch.cat([torch.logspace(-9, math.log10(largest), 60, dtype=F64), torch.tensor([largest], dtype=F64)])
    for rate in (math.nextafter(DIFFUSIVE_MIN_RATE, math.inf), 100.0, 1e3, 1e5, 1e7):
        if dtype == torch.float32:
            coefficients, scale = diffusive_series(torch.tensor([rate], dtype=F64))
            got = diffusive_series_radius(exponential.neg().to(dtype)[None], coefficients, scale)[0]
            lam = mpmath.mpf(rate)
        else:
            rate_t = torch.tensor(rate, dtype=dtype)
            got = diffusive_radius(exponential[None].clone(), rate_t.reshape(1, 1), DIFFUSIVE_NEWTON_STEPS)[0]
            lam = mpmath.mpf(float(rate_t))
        for e, value in zip(exponential.to(dtype).tolist(), got.tolist()):
            with mpmath.workdps(40):
                v = mpmath.findroot(lambda v: lam * v - mpmath.log1p(v / (2 * (1 - v))) - e, e / lam)
                expected = mpmath.sqrt(v * (2 - v))
            assert abs(value / expected - 1) <= ulps * torch.finfo(dtype).eps, (rate, e)


def test_kac_diffusive_rows_stay_finite_where_the_squared_front_overflows_float32():
    """c t = 1e24 (a = 1, c = 1e12: (c t)^2 = 1e48 is beyond float32): finite float32 draws whose spread is the
    diffusive limit sqrt(c^2 t / a) (a t = 1e12, 6000 draws: the sample std within 5%, about 4 standard errors)."""
    family = KacProductFamily(a=1.0, c=1e12)
    times = torch.tensor([1e12, 1e12], dtype=torch.float32)
    d, atoms = family.sample_displacement(times, (3000,), generator=torch.Generator().manual_seed(2))
    assert bool(torch.isfinite(d).all()) and not bool(atoms.any())
    assert float(d.double().std()) == pytest.approx(1e12 * math.sqrt(1e12), rel=0.05)


@pytest.mark.parametrize("t", [1e-4, 0.05, 0.3, 2.0])
def test_kac_fused_log_kernel_and_velocity_equal_the_separate_calls(t):
    family = KacProductFamily(a=9.0, c=3.0)
    times = torch.full((64,), t, dtype=F64)
    d, _ = family.sample_displacement(times, (5,), generator=torch.Generator().manual_seed(3))
    # coordinates on, just over and just inside the cone, and at the origin
    d[:4, 0] = torch.tensor([3 * t, -3 * t * (1 + 1e-9), 3 * t * (1 - 1e-7), 0.0], dtype=F64)
    log_kernel, velocity = family.log_kernel_and_velocity(d, times)
    torch.testing.assert_close(log_kernel, family.log_kernel(d, times), rtol=1e-14, atol=0)
    torch.testing.assert_close(velocity, family.conditional_velocity(d, times), rtol=1e-14, atol=0)


def test_kac_bessel_series_match_mpmath():
    """I0(z) and I1(z)/z by the power series (up to the largest z of the series blocks), and e^-z I0(z), e^-z I1(z)/z
    by the power series below BESSEL_SERIES_MAX_Z and the economised asymptotic series above (plain where min(z) is
    large; marginal velocity's fast paths), against mpmath."""
    from pde2gen.families.kac_product.runtime import (
        BESSEL_SERIES_MAX_Z,
        SERIES_BLOCK_MAX_RATE,
        bessel_scaled,
        bessel_series,
    )

    mpmath.mp.dps = 30

    def reference(z, scaled):
        i0 = [mpmath.besseli(0, float(v)) * (mpmath.exp(-float(v)) if scaled else 1) for v in z]
        i1 = [(mpmath.besseli(1, float(v)) / float(v) if v > 0 else mpmath.mpf(0.5)) * (mpmath.exp(-float(v)) if scaled else 1)
              for v in z]
        return np.array([float(v) for v in i0]), np.array([float(v) for v in i1])

    z = torch.cat([torch.tensor([0.0, 1e-8, 1e-3], dtype=F64), torch.linspace(0.01, SERIES_BLOCK_MAX_RATE, 157, dtype=F64)])
    for value, expected in zip(bessel_series(z * z / 4), reference(z, False)):
        np.testing.assert_allclose(value.numpy(), expected, rtol=4e-15, atol=0)
    economised = torch.linspace(BESSEL_SERIES_MAX_Z, 3 * BESSEL_SERIES_MAX_Z, 61, dtype=F64)
    z = torch.cat([z, economised, torch.logspace(math.log10(BESSEL_SERIES_MAX_Z), 6, 60, dtype=F64)])
    far = torch.logspace(math.log10(200.0), 6, 30, dtype=F64)  # fewer asymptotic terms when every z is large
    for points in (z, far):
        for value, expected in zip(bessel_scaled(points, torch.ones_like(points)), reference(points, True)):
            np.testing.assert_allclose(value.numpy(), expected, rtol=4e-15, atol=0)


def test_kac_exact_flow_pulls_overshoots_back_and_lands_on_point_masses(tmp_path):
    """A built telegraph module with a = c = 1 in N = 2 (the product construction): Heun in sigma on the 40-point grid
    of the exact marginal velocity (the generated test of point-mass data) lands >= 90% of 64 prior draws within 0.1
    of the two data points (measured 100%, median miss 0.003). Without a latent, coordinates over a cone move with
    c d / (c t), so each reverse step's overshoot over the front shrinks with t; at +-c it stayed down to t = 0 (58%
    landed, median miss 0.068: the ballistic phase a t < 1 spans the grid's last ~15 points)."""
    from pde2gen.build import build

    build("u_tt + 2*u_t = lap(u)", tmp_path / "telegraph", dim=2, construction="product")
    with generated_modules(tmp_path / "telegraph") as generated:
        process = generated.process.Process().double()
        data = torch.tensor([[-1.0, 0.0], [1.0, 0.0]], dtype=F64)
        x = process.sample_prior(64, generator=torch.Generator().manual_seed(8))
        exact = process.sigma_velocity(lambda x, t: process.marginal_velocity(x, t, data))
        samples = generated.process.sample_heun(exact, x, process.sigma_grid(40))
    miss = (samples[:, None] - data[None]).norm(dim=2).min(dim=1).values
    assert float((miss < 0.1).double().mean()) >= 0.9, float(miss.median())


@pytest.mark.parametrize("rate", [1e-3, 0.3, 2.7, 9.0, 29.0, 31.0, 60.0, 300.0, 1e4])
@pytest.mark.parametrize("atom_rtol", [1e-4, 1e-12])
def test_kac_blocked_log_kernel_and_velocity_equal_the_special_function_calls(rate, atom_rtol, monkeypatch):
    """log_kernel_and_velocity (own Bessel series, masks by multiplication, row blocks) against log_kernel and
    conditional_velocity (torch.special.i0e/i1e, torch.where, logaddexp) for a t from 1e-3 to 1e4 (both block kinds):
    coordinates inside, on, just over and far over the cone (finite scores there), at the origin, in blocks of
    2 rows (the block budget shrunk). At a t = 31 and 60 dense blocks defer their edge coordinates to one pass
    (_settle_edges): at 31 until a block has too many, at 60 throughout."""
    import pde2gen.families.kac_product.runtime as kac

    family = KacProductFamily(a=9.0, c=3.0, atom_rtol=atom_rtol)
    t = rate / 9.0
    times = torch.full((16,), t, dtype=F64)
    generator = torch.Generator().manual_seed(5)
    d = 3 * t * (2 * torch.rand(16, 7, generator=generator, dtype=F64) - 1)
    d[8:] *= 0.01  # far from the front (at large a t: z > 30 throughout, the power series skipped)
    d[:6, 0] = 3 * t * torch.tensor([1.0, -(1 + 1e-9), 1 - 1e-7, 0.0, 1 + 1e-3, -10.0], dtype=F64)
    monkeypatch.setattr(kac, "BESSEL_SERIES_BLOCK", 14)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)  # blocks of 2 rows
    log_kernel, velocity = family.log_kernel_and_velocity(d, times)
    assert bool(torch.isfinite(log_kernel).all())
    torch.testing.assert_close(log_kernel, family.log_kernel(d, times), rtol=1e-13, atol=0)
    torch.testing.assert_close(velocity, family.conditional_velocity(d, times), rtol=0, atol=1e-14)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 3)  # a block per 3 threads: 6 rows, other deferrals
    log_kernel_threads, velocity_threads = family.log_kernel_and_velocity(d, times)
    torch.testing.assert_close(log_kernel_threads, log_kernel, rtol=1e-13, atol=0)
    torch.testing.assert_close(velocity_threads, velocity, rtol=0, atol=1e-14)


@pytest.mark.parametrize("rate", [1e-3, 0.3, 9.0, 31.0, 300.0])
@pytest.mark.parametrize("atom_rtol", [1e-4, 1e-12])
def test_kac_sparse_blocks_gather_the_coordinates_inside_the_cone(rate, atom_rtol, monkeypatch):
    """Blocks with most coordinates over the cone (small a t in practice) take the atom-bump formula there and run
    the Bessel work on the gathered inside coordinates; rows at several times (per-row parameters gathered); a
    block mostly inside the cone then switches the rest of the call to whole blocks. Against log_kernel and
    conditional_velocity, as above."""
    import pde2gen.families.kac_product.runtime as kac

    family = KacProductFamily(a=9.0, c=3.0, atom_rtol=atom_rtol)
    times = (rate / 9.0) * torch.linspace(0.5, 1.5, 16, dtype=F64)
    front = (3 * times)[:, None]
    generator = torch.Generator().manual_seed(6)
    sign = torch.where(torch.rand(16, 7, generator=generator) < 0.5, -1.0, 1.0).to(F64)
    d = sign * front * (1 + 3 * torch.rand(16, 7, generator=generator, dtype=F64))  # over the cone
    d[:12, 0] *= torch.rand(12, generator=generator, dtype=F64) / 4  # one coordinate per row inside
    d[:4, 1] = front[:4, 0] * torch.tensor([1.0, -(1 - 1e-7), 1 + 1e-9, 0.0], dtype=F64)  # on, at, just over the front
    d[12:] = front[12:] * (2 * torch.rand(4, 7, generator=generator, dtype=F64) - 1)  # the last blocks: inside
    monkeypatch.setattr(kac, "BESSEL_SERIES_BLOCK", 14)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)  # blocks of 2 rows
    sparse_blocks = []
    original = family._sparse_block

    def spy(*arguments):
        result = original(*arguments)
        sparse_blocks.append(result[1])
        return result

    monkeypatch.setattr(family, "_sparse_block", spy)
    log_kernel, velocity = family.log_kernel_and_velocity(d, times)
    assert sparse_blocks[:6] == [True] * 6 and sparse_blocks[-1] is False  # both kinds ran
    assert bool(torch.isfinite(log_kernel).all())
    torch.testing.assert_close(log_kernel, family.log_kernel(d, times), rtol=1e-13, atol=0)
    torch.testing.assert_close(velocity, family.conditional_velocity(d, times), rtol=0, atol=1e-14)


# ------------------------------------------------------------------------------------------------
# NIG: the posterior coupling factor (velocity without latent) interpolated at one tau


@pytest.mark.parametrize("m, n, tau", [(1.0, 2, 0.5), (0.1, 2, 1e-3), (5.0, 16, 20.0), (1.0, 64, 0.5)])
def test_nig_interpolated_posterior_factor_matches_the_quadrature(m, n, tau):
    from pde2gen.families.nig.runtime import FACTOR_TABLE_MIN_VALUES, NIGFamily

    family = NIGFamily(c=1.0, m=m)
    log_rho2 = torch.empty(FACTOR_TABLE_MIN_VALUES, dtype=F64).uniform_(
        math.log(1e-6 * tau * tau), math.log(1e4 * (n + 1) * tau * tau), generator=torch.Generator().manual_seed(n))
    rho2 = torch.cat([torch.exp(log_rho2), torch.zeros(1, dtype=F64)])
    fast = family._interpolated_posterior_coupling_factor(rho2, tau, n)
    reference = family._posterior_coupling_factor(rho2, torch.full_like(rho2, tau), n)
    np.testing.assert_allclose(fast.numpy(), reference.numpy(), rtol=0, atol=1e-12)
    # conditional_velocity takes the interpolated path for many displacements at one time
    t = torch.full((FACTOR_TABLE_MIN_VALUES,), tau, dtype=F64)
    d = torch.randn(FACTOR_TABLE_MIN_VALUES, n, dtype=F64, generator=torch.Generator().manual_seed(1)) * tau
    expected = d * (family._posterior_coupling_factor((d * d).sum(-1), t, n) / tau)[:, None]
    np.testing.assert_allclose(family.conditional_velocity(d, t).numpy(), expected.numpy(), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("m", [0.0, 0.1, 1.0])
def test_nig_log_kernel_and_velocity_equal_the_separate_calls(m):
    """Process.marginal_velocity's one-pass NIG path (|d|^2 once, shared by log p and the posterior factor) gives
    the values of log_kernel and conditional_velocity, with the factor's table (one t) and its quadrature (many)."""
    from pde2gen.families.nig.runtime import NIGFamily

    family = NIGFamily(c=1.0, m=m)
    generator = torch.Generator().manual_seed(3)
    for times in (torch.full((4096,), 0.7, dtype=torch.float64), torch.rand(64, dtype=torch.float64, generator=generator) + 0.1):
        d = torch.randn(len(times), 2, dtype=torch.float64, generator=generator) * 2
        log_p, velocity = family.log_kernel_and_velocity(d, times)
        assert torch.equal(log_p, family.log_kernel(d, times))
        assert torch.equal(velocity, family.conditional_velocity(d, times))
