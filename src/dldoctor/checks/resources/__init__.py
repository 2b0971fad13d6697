"""Resource checks: memory that grows step after step, a step that waits on its loader, throughput."""
