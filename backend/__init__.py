"""Baton's engine: audio in, conducting keypoints out (see README.md)."""

__version__ = "0.1.0"
