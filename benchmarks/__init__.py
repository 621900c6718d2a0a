"""The benchmark suite: each benchmark writes ``benchmarks/results/<name>.json`` and a plot."""
