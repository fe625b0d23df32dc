"""The radial profiles of runtime_common.RadialMixtureKernel (issue 11): many (sample, data point) pairs at one t
(Process.marginal_velocity) read log p and the posterior velocity factor from Chebyshev panels in L = log |d|^2,
built from the family's own quadrature. Checked here against that quadrature row by row, from far inside to far
outside the bulk, and by counting the quadrature rows a call costs."""
import dataclasses
import math

import pytest
from test_generated_scripts import generated_modules, module_ir, write_module

torch = pytest.importorskip("torch")

from pde2gen.codegen.lower import FAMILY_CLASSES
from pde2gen.families import runtime_common
from pde2gen.families.heat_nig.runtime import HeatNIGFamily
from pde2gen.families.heat_stable.runtime import HeatStableFamily

F64 = torch.float64
FAMILIES = {
    "heat+cauchy": lambda: HeatNIGFamily(1.0, 1.0, 0.0),
    "heat+nig": lambda: HeatNIGFamily(0.5, 2.0, 1.5),
    "heat+stable(3/2)": lambda: HeatStableFamily(1.0, 2.0, 1.5),
    "heat+stable(1/2)": lambda: HeatStableFamily(3.0, 1.0, 0.5),
}


def count_quadrature_rows(family):
    """Wrap ``family._mixture`` (the subclass' quadrature): the returned list gets each call's row count."""
    calls, original = [], family._mixture

    def mixture(rho2, t, n, with_factor):
        calls.append(rho2.shape[0])
        return original(rho2, t, n, with_factor)

    family._mixture = mixture
    return calls


def time_of_sigma(family, sigma):
    return float(family.t_of_sigma(torch.tensor(sigma, dtype=F64)))


CASES = [(n, sigma) for n, sigmas in ((1, (0.5,)), (2, (0.05, 5.0)), (64, (0.5,)), (3072, (0.05, 5.0)))
         for sigma in sigmas]


@pytest.mark.parametrize("name", FAMILIES)
@pytest.mark.parametrize("n, sigma", CASES)
def test_profile_agrees_with_the_quadrature_row_by_row(name, n, sigma):
    """L from 20 below to 20 above log(N sigma^2) (|d|^2 from e^-20 to e^20 times the bulk's), plus a dense stretch
    through the bulk: log p within 1e-8 (absolute where |log p| <= 1000; 1e-11 relative beyond, where float64 and
    the quadrature themselves carry more), the factor within 1e-8 relative; and the profile was read (the call
    cost fewer quadrature rows than 60 % of its rows, building included; where the quadrature itself jumps, e.g.
    heat + Cauchy in the bulk at N = 3072, its rows stay with it)."""
    family = FAMILIES[name]()
    t = time_of_sigma(family, sigma)
    anchor = math.log(n) + 2 * math.log(sigma)
    log_rho2 = torch.cat([torch.linspace(anchor - 20, anchor + 20, 801, dtype=F64),
                          torch.linspace(anchor - 1, anchor + 2, 300, dtype=F64)])
    rho2, times = torch.exp(log_rho2), torch.full_like(log_rho2, t)
    calls = count_quadrature_rows(family)
    log_p, factor = family._radial(rho2, times, n, True)
    assert sum(calls) < 0.6 * rho2.shape[0], sum(calls)
    del family._mixture
    exact_log_p, exact_factor = family._quadrature(rho2, times, n, True)
    error = (log_p - exact_log_p).abs() / (exact_log_p.abs() / 1000).clamp_min(1)
    assert float(error.max()) < 1e-8
    assert float(((factor - exact_factor).abs() / exact_factor).max()) < 1e-8


def test_many_pairs_at_one_time_cost_few_quadrature_rows():
    """64 samples x 2000 data points in N = 2 (bench/cost.py's case) at one t: under 0.5 % of the 128,000 rows go
    through the quadrature (it was every row), log_kernel_and_velocity equals log_kernel and conditional_velocity,
    and a sample of rows agrees with the quadrature."""
    family = HeatNIGFamily(1.0, 1.0, 0.0)
    generator = torch.Generator().manual_seed(0)
    data = torch.randn(2000, 2, generator=generator, dtype=F64)
    x = data[:64] + 0.3 * torch.randn(64, 2, generator=generator, dtype=F64)
    d = (x[:, None] - data[None]).reshape(-1, 2)
    t = torch.full((d.shape[0],), time_of_sigma(family, 0.5), dtype=F64)
    calls = count_quadrature_rows(family)
    log_p, velocity = family.log_kernel_and_velocity(d, t)
    assert 0 < sum(calls) < 0.005 * d.shape[0], sum(calls)
    torch.testing.assert_close(family.log_kernel(d, t), log_p, rtol=0, atol=0)
    torch.testing.assert_close(family.conditional_velocity(d, t), velocity, rtol=0, atol=0)
    rows = torch.randperm(d.shape[0], generator=generator)[:300]
    exact_log_p, exact_factor = family._quadrature(d[rows].square().sum(-1), t[rows], 2, True)
    torch.testing.assert_close(log_p[rows], exact_log_p, rtol=0, atol=1e-8)
    torch.testing.assert_close(velocity[rows], d[rows] * exact_factor[:, None], rtol=1e-8, atol=0)


def test_few_rows_take_the_quadrature_until_their_time_has_a_profile():
    """Below PROFILE_MIN_ROWS rows at a new t: the quadrature itself (bit for bit, no profile made); once a large
    call made that t's profile, a small call reads it without quadrature."""
    family = HeatStableFamily(1.0, 2.0, 1.5)
    t = time_of_sigma(family, 0.5)
    generator = torch.Generator().manual_seed(1)
    few = 0.5 * torch.randn(32, 3, generator=generator, dtype=F64)
    times = torch.full((32,), t, dtype=F64)
    log_p = family.log_kernel(few, times)
    torch.testing.assert_close(log_p, family._quadrature(few.square().sum(-1), times, 3, False)[0], rtol=0, atol=0)
    assert not family._profiles
    many = 0.5 * torch.randn(runtime_common.PROFILE_MIN_ROWS, 3, generator=generator, dtype=F64)
    family.log_kernel(many, torch.full((many.shape[0],), t, dtype=F64))
    typical = many[many.square().sum(-1).argsort()[200:208]]  # in the bulk: panels the large call built
    exact = family._quadrature(typical.square().sum(-1), times[:8], 3, False)[0]
    calls = count_quadrature_rows(family)
    torch.testing.assert_close(family.log_kernel(typical, times[:8]), exact, rtol=0, atol=1e-8)
    assert sum(calls) == 0


def test_zero_distance_mixed_times_and_a_bounded_cache():
    """Rows at d = 0 and beyond the profile's range take the quadrature (bit for bit); rows of two frequent times
    and a rare third one are each answered right; profiles of more than PROFILE_CACHE times are dropped oldest
    first."""
    family = HeatNIGFamily(0.5, 2.0, 1.5)
    size = runtime_common.PROFILE_MIN_ROWS
    generator = torch.Generator().manual_seed(2)
    times = torch.tensor([0.1] * size + [0.7] * size + [0.3] * 5, dtype=F64)
    rho2 = 4.0 * torch.rand(times.shape[0], generator=generator, dtype=F64)
    rho2[0], rho2[1] = 0.0, 1e30
    calls = count_quadrature_rows(family)
    log_p, factor = family._radial(rho2, times, 4, True)
    assert sum(calls) < times.shape[0] / 2
    del family._mixture
    exact_log_p, exact_factor = family._quadrature(rho2, times, 4, True)
    torch.testing.assert_close(log_p[:2], exact_log_p[:2], rtol=0, atol=0)
    torch.testing.assert_close(factor[:2], exact_factor[:2], rtol=0, atol=0)
    torch.testing.assert_close(log_p, exact_log_p, rtol=0, atol=1e-8)
    torch.testing.assert_close(factor, exact_factor, rtol=1e-8, atol=0)
    for k in range(runtime_common.PROFILE_CACHE + 2):
        family._radial(rho2[:size], torch.full((size,), 1.0 + k, dtype=F64), 4, False)
    assert [key[0] for key in family._profiles] == [1.0 + k for k in range(2, runtime_common.PROFILE_CACHE + 2)]


def test_generated_module_marginal_velocity_reads_the_profile(tmp_path):
    """A generated heat + Cauchy process.py (runtime_common inlined and pruned): marginal_velocity of 16 samples x
    64 data points (one call of 1024 rows) costs fewer quadrature rows than pairs and equals the posterior average
    written out with the quadrature."""
    ir = dataclasses.replace(module_ir("gaussian", (2,)), family="heat_nig", family_class=FAMILY_CLASSES["heat_nig"],
                             parameters=(("kappa", 1.0), ("c", 1.0), ("m", 0.0)))
    with generated_modules(write_module(ir, tmp_path)) as generated:
        process = generated.process.Process()
        generator = torch.Generator().manual_seed(3)
        data = torch.randn(64, 2, generator=generator, dtype=F64)
        x = data[:16] + 0.5 * torch.randn(16, 2, generator=generator, dtype=F64)
        t = float(process.t_of_sigma(torch.tensor(0.5, dtype=F64)))
        calls = count_quadrature_rows(process.family)
        velocity = process.marginal_velocity(x, t, data)
        assert sum(calls) < 16 * 64, sum(calls)
        d = (x[:, None] - data[None]).reshape(-1, 2)
        log_p, factor = process.family._quadrature(d.square().sum(-1), torch.full((1024,), t, dtype=F64), 2, True)
        weights = torch.softmax(log_p.reshape(16, 64), dim=1)
        expected = (weights[..., None] * (d * factor[:, None]).reshape(16, 64, 2)).sum(1)
        torch.testing.assert_close(velocity, expected, rtol=1e-8, atol=1e-10)


def test_rows_whose_panels_never_converge_take_the_quadrature(monkeypatch):
    """With a tolerance no panel can meet, every panel is halved down to where halving stops paying and then left
    to the quadrature: the answer is the quadrature's, bit for bit, and a second call builds nothing more."""
    monkeypatch.setattr(runtime_common, "PROFILE_TOLERANCE", 0.0)
    family = HeatStableFamily(1.0, 2.0, 1.5)
    generator = torch.Generator().manual_seed(4)
    rho2 = torch.rand(runtime_common.PROFILE_MIN_ROWS, generator=generator, dtype=F64)
    times = torch.full_like(rho2, 0.2)
    log_p, factor = family._radial(rho2, times, 2, True)
    exact_log_p, exact_factor = family._quadrature(rho2, times, 2, True)
    torch.testing.assert_close(log_p, exact_log_p, rtol=0, atol=0)
    torch.testing.assert_close(factor, exact_factor, rtol=0, atol=0)
    calls = count_quadrature_rows(family)
    family._radial(rho2, times, 2, True)
    assert sum(calls) == rho2.shape[0]  # the rows themselves, no new panel


def test_the_next_time_starts_from_the_last_profiles_panels():
    """An ODE step's profile starts halving where the previous step's (same N) accepted its panels: the second of
    two nearby times costs fewer quadrature rows than the first, and still agrees with the quadrature."""
    family = HeatStableFamily(1.0, 2.0, 1.5)
    generator = torch.Generator().manual_seed(5)
    data = torch.randn(1000, 2, generator=generator, dtype=F64)
    d = ((data[:32] + 0.3 * torch.randn(32, 2, generator=generator, dtype=F64))[:, None] - data[None]).reshape(-1, 2)
    rows = []
    for sigma in (0.5, 0.5001):
        t = torch.full((d.shape[0],), time_of_sigma(family, sigma), dtype=F64)
        calls = count_quadrature_rows(family)
        log_p, velocity = family.log_kernel_and_velocity(d, t)
        rows.append(sum(calls))
        del family._mixture
    assert rows[1] < 0.85 * rows[0], rows
    exact_log_p, exact_factor = family._quadrature(d[::50].square().sum(-1), t[::50], 2, True)
    torch.testing.assert_close(log_p[::50], exact_log_p, rtol=0, atol=1e-8)
    torch.testing.assert_close(velocity[::50], d[::50] * exact_factor[:, None], rtol=1e-8, atol=0)
