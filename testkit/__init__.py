"""Test doubles for the two networks and generated media whose right answer is known.

Shared by the tests and the benchmark (bench/), which must not import each other;
not part of the installed package.
"""
