"""Interpolate folders of frames and videos: ``python infer_video.py -m raft+pervfi -data input -fps 10``.

See ``python infer_video.py --help`` and README.md.
"""
import sys

from pervfi.cli import main

if __name__ == "__main__":
    sys.exit(main())
