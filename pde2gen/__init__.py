"""pde2gen: a compiler from linear PDEs to generative models.

Stages (docs/DESIGN.md): parse -> analyse -> derive -> lower -> render.
"""
__version__ = "0.1.0"

from .operators import FractionalLaplacian as FractionalLaplacian  # for SymPy input
from .operators import Laplacian as Laplacian
