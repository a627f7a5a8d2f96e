#!/usr/bin/env python3
"""run_pipeline: placeholder until the face pipeline (issue: Faces) lands."""
from syncnet.cli import not_yet

if __name__ == "__main__":
    not_yet("run_pipeline.py", "the face pipeline (issue: Faces)")
