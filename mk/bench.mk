# Benchmarks.  Each area adds a phony bench-<name> target to BENCH_TARGETS; every figure is
# printed next to a baseline measured in the same run (and the reference figures of
# ../shared/docs/anchors.md), as ratios: the machines are shared and noisy.
BENCH_TARGETS :=

## bench: run every benchmark (speed and memory, as ratios to baselines measured in the same run)
.PHONY: bench
bench: $$(BENCH_TARGETS)
