"""The OpenAI-compatible HTTP API that `offgrid serve` puts in front of a loaded engine."""
