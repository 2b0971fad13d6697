"""Resource probes: per-step memory and timing records, what grows, loader timing,
throughput, and the memory model of a training step."""
