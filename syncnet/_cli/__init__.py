"""The command line: one module per tool (parser + main), shared argument groups and model loading.

The library below never imports this package."""
