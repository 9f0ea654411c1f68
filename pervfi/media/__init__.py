"""Frames and videos: reading, writing, ffmpeg, audio, GIFs and scene analysis (no models).

Imports only `pervfi.core`.
"""
