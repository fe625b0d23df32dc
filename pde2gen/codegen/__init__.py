"""Code generation: lower (the derived PDE -> ModuleIR, plain data only) and render (ModuleIR + templates + the
family's torch runtime read as text -> the generated files)."""
