#!/usr/bin/env python3
"""Analyse every video of a folder (mp4, avi, mkv, mov, webm) with a pool of workers.

A shim: the tool lives in `syncnet._cli.batch_process` (see --help).
"""
from syncnet._cli.batch_process import entry

if __name__ == "__main__":
    entry()
