#!/usr/bin/env python3
"""LSE-C / LSE-D of talking-face videos, as the published evaluation protocol computes them.

A shim: the tool lives in `syncnet._cli.score_videos` (see --help).
"""
from syncnet._cli.score_videos import entry

if __name__ == "__main__":
    entry()
