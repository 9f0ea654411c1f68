"""python -m pervfi.train: train or fine-tune PerVFI's generator with the authors' recipe.

    python -m pervfi.train --config v00 --dataset vimeo90k --root data/vimeo_triplet
    python -m pervfi.train --config finetune --dataset frames --root my_frames --out runs/mine
    python -m pervfi.train --config vb --root data/vimeo_triplet --resume latest
    python -m pervfi.train --config vb --root data/vimeo_triplet --resume latest --resume-override train.epochs=80
    torchrun --nproc_per_node 8 -m pervfi.train --config v00 --root data/vimeo_triplet

--config takes a shipped recipe (v00, vb, finetune) or a YAML file; trailing KEY=VALUE
arguments override its keys (train.max_lr=1e-4 data.crop=128). A resume must keep the saved
values of every key that shapes the run (all but out, device, checkpoint_dir, init, data.root,
data.workers, data.val_limit, train.stop_after and log.*); --resume-override continues with the
new ones from the resumed step on (the learning-rate schedule rebuilt at its position). Errors
the user can fix print one line and exit with status 2.
"""
from __future__ import annotations

import argparse
import sys

from pervfi.core.cpu_threads import use_threads
from pervfi.runtime.console import ArgumentParser, add_threads_option, configure_logging, run_command

from .config import load_config, shipped_configs
from .engine import train

# Options that are shorthands for config keys.
SHORTHANDS = {"dataset": "data.dataset", "root": "data.root", "init": "init", "out": "out", "device": "device"}


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m pervfi.train", description=__doc__.split("\n")[0],
                            formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--config", required=True, help=f"a shipped recipe ({', '.join(shipped_configs())}) or a YAML file")
    parser.add_argument("--resume", help="'latest' (the newest state of the run folder) or a state folder")
    parser.add_argument("--resume-override", action="store_true",
                        help="resume even though the configuration differs from the saved one (the new values apply)")
    parser.add_argument("--dataset", help="vimeo90k | frames | videos (config data.dataset)")
    parser.add_argument("--root", help="the dataset's folder (config data.root)")
    parser.add_argument("--init", help="scratch | v00 | vb | a generator checkpoint (config init)")
    parser.add_argument("--out", help="the run folder (config out)")
    parser.add_argument("--device", help="auto | cpu | cuda | mps (config device)")
    add_threads_option(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar, only warnings and errors")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config keys to change")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(quiet=args.quiet)
    shorthands = {key: value for option, key in SHORTHANDS.items() if (value := getattr(args, option)) is not None}
    def work() -> None:
        use_threads(args.threads)
        train(load_config(args.config, args.overrides, shorthands), resume=args.resume, progress=not args.quiet,
              resume_override=args.resume_override)

    return run_command(work, stopped="the last complete state is kept; continue with --resume latest")


if __name__ == "__main__":
    sys.exit(main())
