"""python -m pervfi.train.flows: precompute a Vimeo90K tree's optical flows for training.

    python -m pervfi.train.flows --root data/vimeo_triplet --estimator raft
    python -m pervfi.train.flows --root data/vimeo_triplet --estimator gmflow --device cuda

For every clip of tri_trainlist.txt and tri_testlist.txt, the flows im1→im3 and im3→im1 are
written to ``<root>/optical_flows/<estimator>/<seq>/<clip>/fflow.png`` and ``bflow.png`` in the
reference's KITTI 16-bit format (see `flow_files`), exactly where the authors'
``prepare_optical_flow.py`` puts them, so either tool's tree trains unchanged. RAFT runs 20
iterations, as in the reference. Clips whose two files exist are skipped, so an interrupted
run continues where it stopped (each file is renamed into place once written).
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from pervfi.core.cpu_threads import use_threads
from pervfi.media.frame_files import read_frame
from pervfi.media.tensors import to_tensor
from pervfi.models import registry
from pervfi.models.checkpoints import load_model
from pervfi.runtime.console import ArgumentParser, add_threads_option, configure_logging, run_command
from pervfi.runtime.device import resolve_device

from .datasets import VimeoTriplets
from .flow_files import write_flow

log = logging.getLogger("pervfi.train")

# The reference's settings (src/train/flow_estimators): RAFT with 20 refinement iterations.
ESTIMATOR_OPTIONS = {"raft": {"iters": 20}, "raft_small": {"iters": 20}}


def precompute_flows(root: Path, estimator: str, device: str = "auto", checkpoint_dir: str = "checkpoints",
                     progress: bool = True) -> int:
    """Write the flows of every clip of the Vimeo90K tree at `root` by `estimator`; the number written."""
    tree = VimeoTriplets(root, methods=())
    clips = tree.split("train") + tree.split("val")
    target = root / "optical_flows" / estimator
    todo = [clip for clip in dict.fromkeys(clips)
            if not all((target / clip / name).is_file() for name in ("fflow.png", "bflow.png"))]
    if not todo:
        log.info("every clip already has its %s flows in %s", estimator, target)
        return 0
    chosen = resolve_device(device)
    model = load_model(estimator, "flow", checkpoint_dir=checkpoint_dir,
                       options=ESTIMATOR_OPTIONS.get(estimator)).to(chosen)
    for clip in tqdm(todo, desc=f"{estimator} flows", unit="clip", disable=not progress):
        folder = root / "sequences" / clip
        img0, img1 = (to_tensor(read_frame(folder / name), chosen) for name in ("im1.png", "im3.png"))
        with torch.no_grad():
            flow01, flow10 = model.estimate_bidirectional(img0, img1)
        for name, flow in (("fflow.png", flow01), ("bflow.png", flow10)):
            write_flow(target / clip / name, flow[0].permute(1, 2, 0).float().cpu().numpy())
    return len(todo)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m pervfi.train.flows", description=__doc__.split("\n")[0],
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, type=Path, help="the Vimeo90K triplet folder")
    parser.add_argument("--estimator", required=True, help=f"one of {', '.join(registry.names('flow'))}")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    parser.add_argument("--ckpt-dir", default="checkpoints", help="checkpoint folder (default checkpoints)")
    # the option's earlier name, still accepted
    parser.add_argument("--checkpoints", dest="ckpt_dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    add_threads_option(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    configure_logging(quiet=args.quiet)

    def work() -> None:
        use_threads(args.threads)
        written = precompute_flows(args.root, args.estimator, args.device, args.ckpt_dir, not args.quiet)
        log.info("wrote the %s flows of %d clips under %s", args.estimator, written,
                 args.root / "optical_flows" / args.estimator)

    return run_command(work, stopped="the flows written so far are complete and kept")


if __name__ == "__main__":
    sys.exit(main())
