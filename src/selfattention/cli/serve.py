"""`selfattention serve`: the web page, on this computer, in a browser."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys

from selfattention.cli.common import CommandError, examples, resolve_model
from selfattention.decoding import MAX_SENTENCE_CHARS

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
INSTALL_HINT = "the web page needs FastAPI and uvicorn: pip install 'selfattention[web]'"

log = logging.getLogger(__name__)


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serve",
        help="open the web page: translate, and see the attention as lines, heatmaps and steps",
        description=(
            "Serve the web page on this computer: type a sentence, read its translation, and see the "
            "attention of every layer and head as lines and heatmaps, one head's four steps with its "
            "real numbers, and a word's vector in different sentences. The page loads nothing from "
            "the internet. It listens on 127.0.0.1 (this computer only) unless --host says otherwise. "
            "Needs the web extra: pip install 'selfattention[web]'."
        ),
        epilog=examples("selfattention serve --port 8000      # then open http://127.0.0.1:8000/"),
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}, this computer only; 0.0.0.0 opens it to the network)",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})")
    parser.add_argument("--model", help="model directory or bundled model name (default: the bundled en-fr)")
    parser.add_argument(
        "--max-chars",
        type=int,
        default=MAX_SENTENCE_CHARS,
        help=f"longest sentence the page accepts, in characters (default {MAX_SENTENCE_CHARS})",
    )
    parser.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from selfattention.decoding import Translator

    if not 0 <= args.port <= 65535:
        raise CommandError(f"--port {args.port} is not a port number (0 to 65535)")
    if args.max_chars < 1:
        raise CommandError("--max-chars must be at least 1")
    try:
        import uvicorn

        from selfattention.web.app import create_app
    except ImportError as error:
        raise CommandError(f"{INSTALL_HINT} ({error})") from None
    translator = Translator.load(resolve_model(args.model))
    app = create_app(translator, max_chars=args.max_chars)
    if not _is_loopback(args.host):
        log.warning("listening on %s: other computers on the network can use this page", args.host)
    sys.stderr.write(f"Serving the page on http://{_url_host(args.host)}:{args.port}/ (Ctrl+C stops)\n")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
