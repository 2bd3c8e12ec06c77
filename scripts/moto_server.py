#!/usr/bin/env python3
"""Local AWS stand-in for tests: moto's server with DynamoDB requests serialised.

Why this exists
---------------
The project's tests run against moto (DynamoDB, SQS, SES, Secrets Manager) on a
loopback port instead of real AWS. moto's own ``moto_server`` serves every request
on its own thread, and moto's DynamoDB backend has no per-table locking, so
concurrent ``TransactWriteItems`` / conditional writes interleave their
"check condition" and "write" steps: two transactions can both pass an
``attribute_not_exists(pk)`` check and both be acknowledged, and one of the
acknowledged writes is then silently lost. Real DynamoDB is serialisable, and the
billing code relies on that (idempotency records, optimistic version checks).

This launcher builds the same WSGI app that ``moto.server`` builds
(``DomainDispatcherApplication(create_backend_app)`` served with moto's
``MotoRequestHandler`` on a threaded Werkzeug server) and wraps it in a small
middleware that holds one process-wide lock around every DynamoDB request
(``X-Amz-Target: DynamoDB_...`` and ``DynamoDBStreams_...``) and every
``/moto-api/...`` admin request (reset, data.json walk all backends).
Other services (SQS long polls, SES, Secrets Manager) still run concurrently.
That makes DynamoDB behave as a single serial store, which is exactly the
isolation real DynamoDB gives per item (and more).

The request body is read before the lock is taken and the response body is
produced in full while it is held, so a slow client can't stall other DynamoDB
callers and no moto code runs unlocked after the view returns.

Extra endpoint, answered by the middleware itself:
    GET /_launcher/health  ->  200 {"status": "ok", "pid": ..., "moto": "5.2.5"}

Usage:
    python scripts/moto_server.py [--host 127.0.0.1] [--port $MOTO_PORT|5000] [--quiet]

Only loopback addresses are accepted for --host. ``--port 0`` picks a free port;
the line ``moto ready on http://HOST:PORT`` (printed once listening) names it.
"""

from __future__ import annotations

import argparse
import io
import ipaddress
import json
import logging
import os
import signal
import socket
import sys
import threading
from typing import Any, Callable, Iterable

HEALTH_PATH = "/_launcher/health"

# X-Amz-Target prefixes of requests that run under the lock. "DynamoDB_" is the
# DynamoDB API (e.g. "DynamoDB_20120810.TransactWriteItems"); "DynamoDBStreams_"
# reads the same tables' change records, so it must not see them half-written.
LOCKED_TARGET_PREFIXES = ("DynamoDB_", "DynamoDBStreams_")


def _needs_lock(environ: dict[str, Any]) -> bool:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith(LOCKED_TARGET_PREFIXES):
        return True
    # moto's admin API (reset, data.json, ...) touches every backend at once.
    return environ.get("PATH_INFO", "").startswith("/moto-api")


def _buffer_request_body(environ: dict[str, Any]) -> None:
    """Read the whole request body now (outside the lock) and replace the input
    stream with an in-memory copy, so moto never reads from the socket while the
    lock is held."""
    from werkzeug.wsgi import get_input_stream

    data = get_input_stream(environ).read()
    environ["wsgi.input"] = io.BytesIO(data)
    environ["CONTENT_LENGTH"] = str(len(data))


class SerialisingMiddleware:
    """WSGI middleware: one lock around DynamoDB + moto-api requests, plus health."""

    def __init__(self, app: Callable[..., Iterable[bytes]], moto_version: str):
        self.app = app
        self.lock = threading.Lock()
        self._health = json.dumps(
            {"status": "ok", "pid": os.getpid(), "moto": moto_version}
        ).encode()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH:
            if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
                start_response("405 Method Not Allowed", [("Allow", "GET, HEAD")])
                return [b""]
            start_response(
                "200 OK",
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(self._health))),
                ],
            )
            return [self._health]

        if not _needs_lock(environ):
            return self.app(environ, start_response)

        _buffer_request_body(environ)
        with self.lock:
            result = self.app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return [body]


def _check_loopback(host: str) -> None:
    """Exit unless every address `host` resolves to is a loopback address."""
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as e:
        sys.exit(f"moto_server.py: cannot resolve --host {host!r}: {e}")
    addrs = {info[4][0].split("%", 1)[0] for info in infos}
    bad = sorted(a for a in addrs if not ipaddress.ip_address(a).is_loopback)
    if not addrs or bad:
        sys.exit(
            f"moto_server.py: refusing to bind {host!r} ({', '.join(bad) or 'no address'}):"
            " only loopback addresses (127.0.0.0/8, ::1, localhost) are allowed"
        )


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="moto server with serialised DynamoDB (loopback only)"
    )
    parser.add_argument("-H", "--host", default="127.0.0.1", help="loopback address to bind (default 127.0.0.1)")
    parser.add_argument(
        "-p",
        "--port",
        type=int,
        default=int(os.environ.get("MOTO_PORT") or 5000),
        help="port (default: $MOTO_PORT or 5000; 0 = pick a free one)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="don't log every request")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    _check_loopback(args.host)

    # Imported after argument checks so `--help` and refusals are instant.
    from importlib.metadata import version

    from werkzeug.serving import make_server

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        create_backend_app,
    )

    try:
        # moto >= 5.2.5: keeps headers with underscores (S3 metadata) that
        # Werkzeug's default handler drops. Not needed by DynamoDB/SQS/SES/SM.
        from moto.moto_server.werkzeug_app import MotoRequestHandler
    except ImportError:
        MotoRequestHandler = None  # type: ignore[assignment,misc]
        print(
            f"moto_server.py: moto {version('moto')} has no MotoRequestHandler;"
            " using Werkzeug's default (pinned version: see scripts/requirements-dev.txt)",
            file=sys.stderr,
        )

    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    # Same construction as moto.server.main() / ThreadedMotoServer in moto 5.2.5.
    moto_app = DomainDispatcherApplication(create_backend_app)
    moto_app.debug = True  # type: ignore[attr-defined]  # as moto.server does
    app = SerialisingMiddleware(moto_app, version("moto"))

    server = make_server(
        args.host,
        args.port,
        app,
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    port = server.server_port
    # Some moto code (e.g. Lambda/Batch env for containers) reads MOTO_PORT to reach
    # this server; moto.server sets it too.
    os.environ["MOTO_PORT"] = str(port)

    def _stop(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)

    display_host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"moto ready on http://{display_host}:{port}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
