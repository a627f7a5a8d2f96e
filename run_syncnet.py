#!/usr/bin/env python3
"""run_syncnet: placeholder until SyncNet evaluation (issue: SyncNet) lands."""
from syncnet.cli import not_yet

if __name__ == "__main__":
    not_yet("run_syncnet.py", "SyncNet evaluation (issue: SyncNet)")
