"""Time and peak memory of dataset synthesis (rule `synthesize`'s work) for a given study config.

    python benchmarks/synthesis.py --config config.yaml config/demo.yaml --workers 2
    python benchmarks/synthesis.py --oasis-sessions 436 --tree /tmp/oasis-tree --workers 2

The second form fabricates an OASIS-1-layout tree of that many sessions (about 19 MB each) once, then
synthesises the paper-sized dataset (436 x 6 = 2616 samples) from it. Prints one table row and writes
it to ``--csv`` when given. Peak memory is the largest resident set of this process or its workers.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from advmri.config import load_config  # noqa: E402
from advmri.data.dataset import build_dataset, write_dataset  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--config", nargs="+", default=[str(REPO / "config.yaml")])
    parser.add_argument("--oasis-sessions", type=int, default=0)
    parser.add_argument(
        "--tree", type=Path, default=Path(tempfile.gettempdir()) / "advmri-oasis-tree"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="advmri-synth-")))
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args()

    config = load_config(*args.config)
    label = "+".join(Path(c).name for c in args.config)
    if args.oasis_sessions:
        from fabricate import write_oasis_session

        for index in range(args.oasis_sessions):
            session = f"OAS1_{index + 1:04d}_MR1"
            if not (args.tree / session).exists():
                write_oasis_session(args.tree, session, shift=(index % 5) - 2)
        config["data"]["source"] = "oasis1"
        config["data"]["oasis1"]["root"] = str(args.tree)
        config["data"]["oasis1"]["slice_index"] = 88
        label = f"oasis1-layout x{args.oasis_sessions}"

    start = time.perf_counter()
    dataset = build_dataset(config, workers=args.workers)
    built = time.perf_counter() - start
    paths = {name: args.out / f"{name}.npy" for name in ("hq", "lq", "lesion")}
    write_dataset(dataset, samples=args.out / "samples.csv", **paths)
    total = time.perf_counter() - start
    size_mb = sum(p.stat().st_size for p in args.out.iterdir()) / 1e6
    peak_mb = (
        max(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
        )
        / 1024
    )
    header = "dataset,samples,workers,synthesis_s,with_writing_s,peak_rss_mb,on_disk_mb"
    row = f"{label},{len(dataset.samples)},{args.workers},{built:.1f},{total:.1f},{peak_mb:.0f},{size_mb:.0f}"
    print(header)
    print(row)
    if args.csv:
        args.csv.write_text(header + "\n" + row + "\n")


if __name__ == "__main__":
    main()
