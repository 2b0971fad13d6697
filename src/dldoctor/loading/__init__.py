"""Load the user's entrypoint: import the target, call the spec function, validate."""
