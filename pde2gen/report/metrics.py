"""Sample-quality metrics in NumPy (used by the demo and the benchmarks): sliced Wasserstein and MMD."""
from __future__ import annotations

import numpy as np


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, *, projections: int = 256, seed: int = 0) -> float:
    """Sliced 1-Wasserstein distance between two point clouds of shape (n, d) and (m, d).

    Each random direction gives a 1-D W1 between the projected empirical laws, computed exactly from
    quantiles on a common grid (so n != m is fine); the result is the mean over directions.
    """
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"dimension mismatch: {a.shape[1]} vs {b.shape[1]}")
    rng = np.random.default_rng(seed)
    directions = rng.standard_normal((a.shape[1], projections))
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)
    levels = (np.arange(max(len(a), len(b))) + 0.5) / max(len(a), len(b))
    qa = _quantiles(np.sort(a @ directions, axis=0), levels)
    qb = _quantiles(np.sort(b @ directions, axis=0), levels)
    return float(np.mean(np.abs(qa - qb)))


def _quantiles(sorted_columns: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Quantiles of each column of an already sorted array by linear interpolation (np.quantile is far slower)."""
    n = len(sorted_columns)
    position = np.clip(levels * n - 0.5, 0, n - 1)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, n - 1)
    frac = (position - low)[:, None]
    return sorted_columns[low] * (1 - frac) + sorted_columns[high] * frac


def mmd_rbf(a: np.ndarray, b: np.ndarray, *, bandwidths=(0.1, 0.3, 1.0, 3.0)) -> float:
    """Unbiased squared MMD with a sum of Gaussian kernels of the given bandwidths (relative to the data scale)."""
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    scale = np.sqrt(np.mean(np.var(np.concatenate([a, b]), axis=0)) * a.shape[1])

    def gram(x, y):
        sq = np.sum(x**2, 1)[:, None] + np.sum(y**2, 1)[None, :] - 2 * x @ y.T
        sq = np.maximum(sq, 0.0) / scale**2
        return sum(np.exp(-sq / (2 * h**2)) for h in bandwidths)

    kaa, kbb, kab = gram(a, a), gram(b, b), gram(a, b)
    n, m = len(a), len(b)
    term_a = (kaa.sum() - np.trace(kaa)) / (n * (n - 1))
    term_b = (kbb.sum() - np.trace(kbb)) / (m * (m - 1))
    return float(term_a + term_b - 2 * kab.mean())
