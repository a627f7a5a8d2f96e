#!/usr/bin/env python3
"""batch_process: placeholder until batch processing (issue: Long videos) lands."""
from syncnet.cli import not_yet

if __name__ == "__main__":
    not_yet("batch_process.py", "batch processing (issue: Long videos)")
