"""The stable kernel family: its declaration (this file), NumPy reference (reference.py) and torch runtime
(runtime.py, read as text by the renderer; never imported by the compiler)."""
