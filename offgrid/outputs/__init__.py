"""What offgrid writes: transcripts (txt, srt, vtt, json, tsv) and pictures (PNG + parameters)."""
