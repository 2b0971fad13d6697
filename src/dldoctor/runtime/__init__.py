"""Low-level helpers below everything else: RNG isolation, tensor walking and moving,
byte sizes. Nothing here imports a dldoctor module but ``core.errors``."""
