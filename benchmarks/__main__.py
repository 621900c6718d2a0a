"""Run every benchmark: ``python -m benchmarks [NAME ...]``."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from benchmarks import churn, decode, flow, offers, serving, training

SUITE = {
    "decode": decode.run,
    "flow": flow.run,
    "offers": offers.run,
    "churn": churn.run,
    "serving": serving.run,
    "training": training.run,
}


def main(names: list[str]) -> int:
    """Run the named benchmarks (all by default) and print each result."""
    unknown = set(names) - set(SUITE)
    if unknown:
        print(f"unknown benchmark(s): {', '.join(sorted(unknown))}; known: {', '.join(SUITE)}")
        return 2
    failed = False
    for name in names or list(SUITE):
        result = SUITE[name]()
        print(f"{name}: { {k: v for k, v in result.items() if k != 'report'} }")
        failed |= result.get("within_budget") is False
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
