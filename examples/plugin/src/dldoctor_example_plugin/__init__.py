"""An example dldoctor plugin: one check, its own diagnosis ID and its own config section."""

from dldoctor_example_plugin.class_prior import ID, ClassPriorAtInit

__all__ = ["ID", "ClassPriorAtInit"]
