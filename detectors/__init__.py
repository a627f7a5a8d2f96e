"""Face detectors.  S3FD is the one the reference pipeline uses."""
from .s3fd import S3FD, S3FDNet

__all__ = ["S3FD", "S3FDNet"]
