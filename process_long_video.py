#!/usr/bin/env python3
"""The main job: cut a long video into chunks and measure the sync of every face in each.

A shim: the tool lives in `syncnet._cli.process_long_video` (see --help).
"""
from syncnet._cli.process_long_video import entry

if __name__ == "__main__":
    entry()
