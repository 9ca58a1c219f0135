"""Errors a user can cause, and the exit codes offgrid returns."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit status, one name per meaning."""

    OK = 0
    ERROR = 1
    USAGE = 2
    INTERRUPTED = 130


class OffgridError(Exception):
    """A failure to report as one line (`offgrid: error: …`) plus an optional hint."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str, hint: str | None = None, exit_code: ExitCode | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code


class UsageError(OffgridError):
    """Bad arguments or option values (exit 2)."""

    exit_code = ExitCode.USAGE


class ModelFileError(OffgridError):
    """A model file that is missing, truncated, corrupt or of the wrong kind."""


class ModelNotCachedError(OffgridError):
    """The model is not on disk and may not be downloaded now."""


class EngineMissingError(OffgridError):
    """The Python binding for an engine is not installed."""


class EngineError(OffgridError):
    """The native engine failed while loading or running."""


class InputError(OffgridError):
    """A document, image or audio input that cannot be used."""


class NetworkError(OffgridError):
    """A download or Hub request failed."""


class ContextOverflowError(OffgridError):
    """A prompt that cannot fit in the context window at all."""

    def __init__(self, prompt_tokens: int, n_ctx: int, n_ctx_max: int | None = None):
        super().__init__(
            f"the prompt has {prompt_tokens} tokens but the context window holds {n_ctx}",
            hint=context_hint("shorten it", n_ctx, n_ctx_max))
        self.prompt_tokens, self.n_ctx = prompt_tokens, n_ctx


def context_hint(first: str, n_ctx: int, n_ctx_max: int | None) -> str:
    """A hint for a context window that is too small, naming only what can work: --ctx when
    the model allows more (*n_ctx_max*: the context it was trained for), else another model."""
    if n_ctx_max is None:
        return f"{first}, or raise --ctx if the model and memory allow"
    if n_ctx_max > n_ctx:
        return f"{first}, or raise --ctx (this model allows up to {n_ctx_max} tokens)"
    return f"{first}, or use a model with a longer context (this one holds {n_ctx} tokens)"
