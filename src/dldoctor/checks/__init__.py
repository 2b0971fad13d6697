"""Built-in checks, one class per file, grouped by stage (see ``core/registry.py``)."""
