"""The models: flow estimators, generators, their registry (`models.yaml`) and checkpoints.

Imports only `pervfi.ops` and `pervfi.core`; nothing here reads a file of frames or knows of
a command line.
"""
