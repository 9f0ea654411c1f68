"""The foundation every layer may use: the error kinds and whole-or-nothing file writes.

Imports nothing else of ours (and no PyTorch).
"""
