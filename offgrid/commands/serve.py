"""`offgrid serve`: this device's text model over the OpenAI-compatible API."""

from __future__ import annotations

import ipaddress
import socket
from typing import Annotated, Optional

import typer

from offgrid import config, history
from offgrid.engines import loader
from offgrid.engines.base import GenerationSettings
from offgrid.engines.loader import EngineOptions
from offgrid.errors import EngineMissingError, OffgridError, UsageError
from offgrid.ui import options
from offgrid.ui.loading import TerminalHooks
from offgrid.ui.output import Output


SHUTDOWN_SECONDS = 2


def serve(
    model: options.ModelOpt = None,
    host: Annotated[str, typer.Option(
        "--host", help="Address to listen on. Anything but 127.0.0.1/localhost lets other "
                       "devices in (and needs --api-key).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535,
                                      help="TCP port.")] = 8080,
    api_key: Annotated[Optional[str], typer.Option(
        "--api-key", help="Callers must send this key (Authorization: Bearer KEY).",
        show_default=False)] = None,
    save: Annotated[bool, typer.Option(
        "--save", help="Keep every request and reply in offgrid history (off by default).")] = False,
    ctx: options.CtxOpt = None,
    threads: options.ThreadsOpt = None,
    seed: options.SeedOpt = None,
    flash_attn: options.FlashAttnOpt = None,
    kv_cache: options.KvCacheOpt = None,
    batch: options.BatchOpt = None,
    yes: options.YesOpt = False,
    force: options.ForceOpt = False,
) -> None:
    """Serve a local text model over the OpenAI-compatible API (/v1/chat/completions)."""
    out = Output(plain=True)
    loopback = _is_loopback(host)
    if not loopback and not api_key:
        raise UsageError(f"listening on {host} lets other devices in, so it needs --api-key",
                         hint=f"offgrid serve --host {host} --api-key \"$(openssl rand -hex 16)\"")
    uvicorn = _import_server()
    conf = config.load()
    chosen = config.settings("chat", dict(model=model, ctx=ctx, threads=threads, seed=seed,
                                          flash_attn=flash_attn, kv_cache=kv_cache,
                                          batch=batch), config=conf)
    engine = loader.open_text(chosen.get("model"),
                              EngineOptions.from_choices(chosen, yes=yes, force=force),
                              TerminalHooks(out))
    from offgrid.api.app import Served, create_app

    served = Served(engine, GenerationSettings.from_choices(chosen), api_key,
                    history.History() if save else None)
    if not loopback:
        out.warn(f"listening on {host}: any device that can reach it may use the model "
                 "(with the API key); the traffic is not encrypted")
    url = f"http://{'127.0.0.1' if host in ('localhost', '::1') else host}:{port}/v1"
    try:
        listener = _listen(host, port)
        out.info(f"serving {engine.model_name} on {url} · Ctrl-C stops")
        # Ctrl-C: replies still streaming get SHUTDOWN_SECONDS, then are cancelled (which
        # stops their generation at the next token) instead of holding the exit until done.
        uvicorn.Server(uvicorn.Config(create_app(served), log_level="warning",
                                      access_log=False, lifespan="off",
                                      timeout_graceful_shutdown=SHUTDOWN_SECONDS)
                       ).run(sockets=[listener])
    finally:
        engine.close()


def _listen(host: str, port: int) -> socket.socket:
    """The bound listening socket (uvicorn's own bind failure is a log line and an exit)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as exc:
        listener.close()
        raise OffgridError(f"cannot listen on {host}:{port}: {(exc.strerror or str(exc)).lower()}",
                           hint="pick another --port") from None
    listener.listen(64)
    return listener


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _import_server():  # type: ignore[no-untyped-def]
    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError:
        raise EngineMissingError("offgrid serve needs its web server",
                                 hint="pip install 'offgrid[serve]'") from None
    return uvicorn


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
