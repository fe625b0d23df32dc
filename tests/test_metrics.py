import numpy as np

from pde2gen.report.metrics import mmd_rbf, sliced_wasserstein


def test_sliced_wasserstein_of_a_shift_matches_its_expected_projection():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((4000, 2))
    shift = np.array([1.0, 0.0])
    # W1 between N(0,1) and N(delta,1) in 1-D is |delta|; averaged over unit directions in 2-D: E|cos U| = 2/pi.
    expected = 2 / np.pi
    got = sliced_wasserstein(a, a + shift, projections=2000)
    assert abs(got - expected) < 0.02


def test_metrics_are_small_for_the_same_law_and_grow_with_the_difference():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((1500, 2)), rng.standard_normal((1500, 2))
    far = rng.standard_normal((1500, 2)) * 2.0
    assert sliced_wasserstein(a, b) < 0.08 < sliced_wasserstein(a, far)
    assert abs(mmd_rbf(a, b)) < 0.01 < mmd_rbf(a, far)
