"""The report writers: the check report (check.py), the derivation report (explain.py), plots, the demo and its
metrics. They read the stages' results and are never imported by a stage (tests/test_architecture.py); the
driver (pde2gen.pipeline) and the CLI call them."""
