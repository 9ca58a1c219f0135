"""What the user hands in: documents (PDF, text, HTML) and their chunks, audio, images."""
