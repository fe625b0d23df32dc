"""pde2gen: a compiler from linear PDEs to generative models.

Stages (docs/DESIGN.md): parse -> analyse -> derive -> lower -> render.
"""
__version__ = "0.1.0"

from .operators import FractionalLaplacian, Laplacian  # noqa: E402  (for writing PDEs in SymPy)
