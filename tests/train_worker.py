"""A training run for the tests, launched in-process or by torchrun: the config's name, then
KEY=VALUE overrides. It uses the tests' small perceptual stand-in (`train_data.TinyPerceptual`),
since the tests do not download VGG19's ImageNet weights."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository, when torchrun runs this file

from pervfi.runtime.console import configure_logging
from pervfi.train import load_config, train
from tests.train_data import TinyPerceptual


def run(config: str, overrides: list[str], resume: str | None = None) -> Path:
    return train(load_config(config, overrides), resume=resume, perceptual=TinyPerceptual(), progress=False)


if __name__ == "__main__":
    configure_logging(quiet=True)
    resume = next((arg.split("=", 1)[1] for arg in sys.argv[2:] if arg.startswith("--resume=")), None)
    run(sys.argv[1], [arg for arg in sys.argv[2:] if not arg.startswith("--resume=")], resume)
