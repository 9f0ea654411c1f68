"""Running the models on frames: the interpolator, its precision and devices, tiling, the
streaming run of one sequence, the multi-device runner and the tools' shared console plumbing.

Imports every layer below it; the front ends (cli, download, app, evaluate, train) build on it.
"""
