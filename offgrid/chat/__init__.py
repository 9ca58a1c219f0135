"""Chat: a conversation, fitting it into the context window, thinking tags, the REPL."""
