"""The heat_stable family (issue 12): u_t = kappa lap(u) - kappa2 (-lap)^(alpha/2) u, f(s) = kappa s + kappa2 s^(alpha/2),
its kernel the heat kernel convolved with the isotropic alpha-stable one. Every expected number is computed here
independently: the kernel by Fourier inversion of ghat in mpmath, the verdicts by hand."""
from __future__ import annotations

import importlib.util

import mpmath as mp
import numpy as np
import pytest

from pde2gen.analysis.analyse import PASS, analyse
from pde2gen.derive import reference
from pde2gen.families import FamilyConfig
from pde2gen.spec.parse import parse


def _ghat(kappa, kappa2, alpha, k, t):
    return mp.exp(-t * (kappa * k * k + kappa2 * k**alpha))


def _kernel_1d(kappa, kappa2, alpha, x, t):
    """p(x) = (1/pi) int_0^oo cos(k x) ghat(k) dk, 30 digits."""
    with mp.workdps(30):
        return mp.quad(lambda k: mp.cos(k * x) * _ghat(kappa, kappa2, alpha, k, t), [0, 1, 2, 4, 8, 16, mp.inf]) / mp.pi


def _kernel_3d(kappa, kappa2, alpha, r, t):
    """p(r) = (1 / (2 pi^2 r)) int_0^oo k sin(k r) ghat(k) dk in N = 3, 30 digits."""
    with mp.workdps(30):
        integral = mp.quad(lambda k: k * mp.sin(k * r) * _ghat(kappa, kappa2, alpha, k, t), [0, 1, 2, 4, 8, 16, mp.inf])
        return integral / (2 * mp.pi**2 * r)


@pytest.mark.parametrize("text,kappa,kappa2,alpha", [
    ("u_t = lap(u) - 2*fraclap(u, 3/4)", 1.0, 2.0, 1.5),
    ("u_t = 3*lap(u) - fraclap(u, 1/4)", 3.0, 1.0, 0.5),
])
def test_heat_plus_stable_is_recognised(text, kappa, kappa2, alpha):
    """f = kappa s + kappa2 s^(alpha/2) with 0 < alpha/2 < 1, alpha != 1: Bernstein (positive in every N, by hand),
    and the family heat_stable with those numbers; the prior is the alpha-stable law (s^(alpha/2) dominates at
    small s) with scale kappa2."""
    from pde2gen.derive.recognise import recognise

    for dim in (1, 3):
        report = analyse(parse(text, dim=dim), repairs=False)
        assert {c.name: c.status for c in report.conditions} == {"C0": PASS, "C1": PASS, "C2": PASS}
    assert report.prior.alpha == pytest.approx(alpha) and report.prior.scale == pytest.approx(kappa2)
    family = recognise(report.dispersion).family
    assert family.name == "heat_stable"
    assert family.params == pytest.approx({"kappa": kappa, "kappa2": kappa2, "alpha": alpha})


@pytest.mark.parametrize("alpha", [0.5, 1.5])
def test_reference_kernel_is_the_convolution(alpha):
    """The twin's log_kernel against the Fourier inversion of exp(-t (s + 2 s^(alpha/2))) in N = 1 and 3."""
    family = FamilyConfig("heat_stable", (("kappa", 1.0), ("kappa2", 2.0), ("alpha", alpha)))
    t = 0.3
    for N, exact in ((1, _kernel_1d), (3, _kernel_3d)):
        for r in (0.1, 1.0, 3.0):
            d = np.zeros((1, N))
            d[0, 0] = r
            value = float(np.exp(reference.log_kernel(family, d, np.array([t]))[0]))
            assert value == pytest.approx(float(exact(1.0, 2.0, alpha, r, t)), rel=1e-8)


def test_heat_plus_stable_builds_and_its_module_samples(tmp_path):
    """u_t = lap(u) - 2 fraclap(u, 3/4): every self-check passes, and the generated process.py draws finite
    displacements whose exact velocity (with the latent log S) is (V_dot / (2V)) d, V_dot = 2 + (4/3) X / t (by hand)."""
    import torch

    from pde2gen.build import build

    result = build("u_t = lap(u) - 2*fraclap(u, 3/4)", tmp_path / "module", dim=3)
    assert result.derivation.family.name == "heat_stable"
    assert all(c.passed for c in result.derivation.checks), [c.name for c in result.derivation.checks if not c.passed]
    spec = importlib.util.spec_from_file_location("heat_stable_process", result.outdir / "process.py")
    process = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(process)
    family = process.HeatStableFamily(1.0, 2.0, 1.5).double()
    t = torch.full((64,), 0.7, dtype=torch.float64)
    d, log_s = family.sample_displacement(t, (3,), generator=torch.Generator().manual_seed(0))
    assert torch.isfinite(d).all() and torch.isfinite(log_s).all()
    x = 2 * (2.0 * 0.7) ** (4 / 3) * torch.exp(log_s)
    expected = (2 + (4 / 3) * x / 0.7) / (2 * (2 * 0.7 + x))
    velocity = family.conditional_velocity(d, t, log_s)
    assert torch.allclose(velocity, d * expected[:, None], rtol=1e-12)


@pytest.mark.parametrize("text,alphas,heat", [
    ("u_t = -fraclap(u, 3/4) - fraclap(u, 1/2)", (1.0, 1.5), 0.0),  # stable + Cauchy
    ("u_t = -fraclap(u, 3/4) - fraclap(u, 1/4)", (0.5, 1.5), 0.0),  # two stables
    ("u_t = lap(u) - fraclap(u, 1/2) - 3*fraclap(u, 3/4)", (1.0, 1.5), 1.0),  # heat + two non-Gaussian
])
def test_two_non_gaussian_terms_are_not_heat_stable_but_a_sum_of_subordinators(text, alphas, heat):
    """heat_stable takes heat plus one stable part; two non-Gaussian parts are the subordinator_sum family
    (tests/test_subordinator_sum.py), with the parts' indices read off the symbol."""
    from pde2gen.derive.recognise import recognise

    report = analyse(parse(text, dim=2), repairs=False)
    assert report.s_generative  # a positive combination of Bernstein functions
    family = recognise(report.dispersion).family
    assert family.name == "subordinator_sum"
    assert family.params["kappa"] == heat
    assert sorted(family.params[f"alpha_{j}"] for j in (1, 2)) == list(alphas)


def test_two_non_gaussian_terms_beyond_the_tables_say_what_is_missing():
    from pde2gen.derive.recognise import NOT_DERIVABLE, recognise

    report = analyse(parse("u_t = lap(u) - fraclap(u, 31/32) - fraclap(u, 1/2)", dim=2), repairs=False)
    assert report.s_generative
    recognition = recognise(report.dispersion)
    assert recognition.family is None and recognition.reason.startswith(NOT_DERIVABLE)
    assert all(term in recognition.reason for term in ("s^(31/32)", "s^(1/2)", "1/32 <= p <= 15/16"))


def test_heat_plus_a_half_stable_derives_and_passes_its_self_checks():
    """alpha = 1/2 (f = s + s^(1/4)): the mixing law of S is far more spread than at 1.5; the same self-checks hold
    (kernel normalised, radial law, sampler, transport, delta limit, finite in N = 1, 2, 3072)."""
    from pde2gen.derive.derive import derive

    spec = parse("u_t = lap(u) - fraclap(u, 1/4)", dim=1)
    derivation = derive(spec, analyse(spec, repairs=False))
    assert derivation.family.name == "heat_stable" and derivation.family.params["alpha"] == 0.5
    assert all(c.passed for c in derivation.checks), [(c.name, c.value) for c in derivation.checks if not c.passed]
