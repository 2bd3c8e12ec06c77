"""What the local stand-ins of providers' APIs (scripts/fake_paypal.py, scripts/fake_stripe.py)
share: a request handler that answers JSON and logs nothing (the checks print their own lines),
and serving it on 127.0.0.1."""

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class JsonHandler(BaseHTTPRequestHandler):
    """A handler whose answers are JSON bodies; subclasses add `do_GET` / `do_POST`."""

    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_):
        pass


def serve(port, handler):
    """Serves `handler` on 127.0.0.1:`port` until killed."""
    ThreadingHTTPServer(("127.0.0.1", port), handler).serve_forever()
