"""Distributed runs (``dldoctor run --nproc-per-node N``, ``torchrun -m dldoctor run``): checks that
compare the ranks' records, which rank 0 gathered (``WatchedLoop.ranks``)."""
