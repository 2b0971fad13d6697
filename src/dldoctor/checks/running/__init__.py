"""Stage 1, "get it running": crashes and silent wiring bugs on one or two batches."""
