"""pde2gen: a compiler from linear PDEs to generative models.

Stages (docs/DESIGN.md): parse -> analyse -> derive -> lower -> render.

The Python API the README shows: ``parse`` (text, SymPy or catalog terms -> PDESpec), the SymPy operators
``Laplacian``, ``FractionalLaplacian`` and ``RelativisticLaplacian``, and the error classes (every public function raises a subclass of
``Pde2genError``). The stages themselves are the modules ``pde2gen.analysis.analyse``, ``pde2gen.derive.derive``,
``pde2gen.build`` (``pde2gen.build.build``), ...
"""
__version__ = "0.1.0"

from .errors import AnalysisError as AnalysisError
from .errors import DerivationError as DerivationError
from .errors import NonLinearPDEError as NonLinearPDEError
from .errors import OutputPathError as OutputPathError
from .errors import ParseError as ParseError
from .errors import Pde2genError as Pde2genError
from .errors import RenderError as RenderError
from .errors import UnsupportedPDEError as UnsupportedPDEError
from .errors import UsageError as UsageError
from .spec.operators import FractionalLaplacian as FractionalLaplacian  # for SymPy input
from .spec.operators import Laplacian as Laplacian
from .spec.operators import RelativisticLaplacian as RelativisticLaplacian
from .spec.parse import parse as parse  # the function; the module is pde2gen.spec.parse

__all__ = [
           "AnalysisError",
           "DerivationError",
           "FractionalLaplacian",
           "Laplacian",
           "NonLinearPDEError",
           "OutputPathError",
           "ParseError",
           "Pde2genError",
           "RelativisticLaplacian",
           "RenderError",
           "UnsupportedPDEError",
           "UsageError",
           "parse",
]
