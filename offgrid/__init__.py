"""offgrid: local AI on the device in your hand."""

__version__ = "0.1.0"
