"""Answers grounded in given text: prompts, roles, and the summarize/ask/extract pipeline."""
