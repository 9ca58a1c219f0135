"""Generators of tiny random-weight models that the real engines load."""
