"""The analyse stage: dispersion.py (the symbol, its branches, the problem type, the Fourier kernel ghat and the
semigroup exponent), positivity.py (the numerics of C1) and analyse.py (the conditions C0, C1, C2, the prior,
equivalences, repairs and the AnalysisReport)."""
