"""Shared helpers of the pde2gen torch runtime: random draws that honour a ``torch.Generator``, exact
Gamma and Poisson samplers, special functions with gradients, and log-space quadrature.

How the runtime is assembled (the renderer and the tests rely on this):
- ``templates/runtime/common.py`` (this file) and ``templates/runtime/<family>.py`` are plain Python
  modules. Tests put ``templates/runtime`` on ``sys.path`` and import them directly.
- A generated ``process.py`` inlines ``common.py`` followed by ``<family>.py``; every line ending with the
  marker comment ``# runtime-import`` is dropped on the way. Family files therefore import only from this
  module (``from common import squared_norm  # runtime-import``) and import ``math``/``torch`` with the
  marker too, since this file already imports them at its top.
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
