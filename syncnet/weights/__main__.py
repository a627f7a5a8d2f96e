"""`python -m syncnet.weights download|ensure|where`: the command lives in syncnet._cli.weights.

The one import from the library up into the command line (pyproject.toml's import-linter
contract ignores exactly this edge): `python -m` runs this file, and the README and
quickstart.sh name the command so.
"""
from syncnet._cli.weights import entry

if __name__ == "__main__":
    entry(prog="python -m syncnet.weights")
