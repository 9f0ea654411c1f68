"""Hugging Face Space entry point: the PerVFI demo page (`python -m pervfi.app` locally).

A Space runs ``python app.py`` with its host and port in GRADIO_SERVER_NAME and
GRADIO_SERVER_PORT, which the app reads. With a GPU (a ZeroGPU Space provides the `spaces`
package) the reference method, RAFT + PerVFI, is preselected and its weights are fetched
from the Hub on first use; on a CPU the weight-free dis+splat. Hosting limits come from
the PERVFI_APP_* variables (the Space's settings).
"""
import importlib.util
import sys

import torch

from pervfi.app.__main__ import main

on_gpu = importlib.util.find_spec("spaces") is not None or torch.cuda.is_available()
sys.exit(main(sys.argv[1:] + (["--method", "raft+pervfi"] if on_gpu else [])))
