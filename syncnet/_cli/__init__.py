"""The command line: one module per tool (build_parser, main, entry), the flags several tools
share (options.py), model loading (models.py) and the plumbing: parser, number checks,
errors to exit codes (common.py).

The library below never imports this package (pyproject.toml's import-linter contracts);
it words its errors in its own terms, and the tools add their flags.
"""
