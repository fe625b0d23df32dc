"""The parse stage's side: the PDE as data (spec.py: PDESpec, Term), the text and SymPy front ends
(frontend.py, operators.py), the catalog of named PDEs and terms (catalog.py) and parse.py, which picks the
way in: text | SymPy | catalog terms -> PDESpec."""
