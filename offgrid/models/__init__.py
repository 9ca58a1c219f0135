"""Models: the curated catalog, the local store (resolve, pull, list, rm) and file checks."""
