"""Face detectors.  S3FD is the one the reference pipeline uses."""
