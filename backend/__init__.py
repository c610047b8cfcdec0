"""Baton's engine: audio in, conducting keypoints out (see README.md and ARCHITECTURE.md)."""
