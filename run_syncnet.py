#!/usr/bin/env python3
"""SyncNet offset and confidence of face-track videos (the reference's run_syncnet.py).

A shim: the tool lives in `syncnet._cli.run_syncnet` (see --help).
"""
from syncnet._cli.run_syncnet import entry

if __name__ == "__main__":
    entry()
