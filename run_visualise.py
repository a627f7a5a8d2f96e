#!/usr/bin/env python3
"""Draw each face track with its framewise SyncNet confidence (the reference's run_visualise.py).

A shim: the tool lives in `syncnet._cli.run_visualise` (see --help).
"""
from syncnet._cli.run_visualise import entry

if __name__ == "__main__":
    entry()
