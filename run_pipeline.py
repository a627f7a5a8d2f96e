#!/usr/bin/env python3
"""Faces, shots, tracks and 224x224 face crops of one video (the reference's run_pipeline.py).

A shim: the tool lives in `syncnet._cli.run_pipeline` (see --help).
"""
from syncnet._cli.run_pipeline import entry

if __name__ == "__main__":
    entry()
