#!/usr/bin/env python3
"""process_long_video: placeholder until the long-video job (issue: Long videos) lands."""
from syncnet.cli import not_yet

if __name__ == "__main__":
    not_yet("process_long_video.py", "the long-video job (issue: Long videos)")
