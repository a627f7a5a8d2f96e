#!/usr/bin/env python3
"""Video utilities: inspect a file, extract its audio, cut it into chunks.

A shim: the tool lives in `syncnet._cli.video_utils` (see --help).
"""
from syncnet._cli.video_utils import entry

if __name__ == "__main__":
    entry()
