"""The terminal side shared by the commands: output rendering, option declarations, progress
for the engine loader, phone helpers and shell completion."""
