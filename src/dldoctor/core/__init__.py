"""The small core: stages, checks, findings, the catalogue, the pipeline, ranking.

Nothing in ``dldoctor.core`` imports torch at module level, so the CLI can start
without it; the context and the checks import torch when they run.
"""
