"""Evaluation: any method on the standard VFI benchmarks with the paper's protocol.

    evaluate(method, dataset, root, scale=2, ...) -> summary dict (means per metric)
    measure_cost(method, device="auto", ...)     -> parameters, FLOPs, time per frame

Command line: ``python -m pervfi.evaluate -m METHOD --dataset NAME --root DIR``.
"""
from .cost import measure_cost
from .datasets import DATASETS, load_dataset
from .runner import evaluate

__all__ = ["DATASETS", "evaluate", "load_dataset", "measure_cost"]
