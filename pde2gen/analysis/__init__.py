"""The analyse stage: dispersion.py (the symbol, its branches, the problem type, the Fourier kernel ghat and the
semigroup exponent), positivity.py (the numerics of C1), one module per condition or result (admissibility.py C0,
smoothing.py C2, positivity_checks.py C1, prior.py, equivalences.py, repairs.py, their types in verdicts.py) and
analyse.py (the driver that runs them and the AnalysisReport)."""
