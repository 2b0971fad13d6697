"""The command line: one module per command, all thin. Nothing here imports torch
at import time, so ``dldoctor --help`` starts fast."""
