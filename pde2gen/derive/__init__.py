"""The derive stage: recognise (a Shape read off the dispersion; the family registry claims it), derive (the
family's formulas and time window -> Derivation), verify (self-checks against the family's NumPy twin) and
reference (the one way in to those twins)."""
