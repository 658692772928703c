"""A small shop served by http.server, for the web-app tests: its goal needs a multi-step path.

Home: "Add" an item (the cart is server state) -> Cart -> Checkout (a form: name, shipping,
"I agree") -> a confirmation page -> "Confirm" -> "Order placed". Checkout is linked
only from a non-empty cart, and the order goes through only with a name typed and the box
ticked; otherwise the form comes back with an error. POST /reset empties the cart.
"""

from __future__ import annotations

import html
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _page(title: str, body: str) -> bytes:
    return f"<!doctype html><title>{title}</title><h1>{title}</h1>{body}".encode()


class Shop:
    def __init__(self) -> None:
        self.cart: list[str] = []
        self.order: dict[str, str] = {}
        self.resets = 0


def handler(shop: Shop) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, body: bytes, status: int = 200, location: str | None = None) -> None:
            self.send_response(status)
            if location:
                self.send_header("Location", location)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urllib.parse.urlparse(self.path)
            query = urllib.parse.parse_qs(url.query)
            if url.path == "/":
                items = "".join(
                    f'<form method="post" action="/add"><input type="hidden" name="item" '
                    f'value="{i}">{i} <button>Add {i}</button></form>'
                    for i in ("Tea", "Cake")
                )
                return self._send(_page("Home", '<a href="/about">About</a>' + items))
            if url.path == "/about":
                return self._send(_page("About", '<p>A test shop.</p><a href="/">Home</a>'))
            if url.path == "/cart":
                listed = ", ".join(shop.cart) or "empty"
                link = '<a href="/checkout">Checkout</a>' if shop.cart else ""
                return self._send(_page("Cart", f"<p>Cart: {listed}</p>{link}"))
            if url.path == "/checkout" and shop.cart:
                error = "<p>Name and agreement needed</p>" if "error" in query else ""
                form = (
                    '<form method="post" action="/order">'
                    '<label for="name">Name</label><input id="name" name="name">'
                    '<select name="ship"><option>Standard</option><option>Express</option>'
                    "</select>"
                    '<label><input type="checkbox" name="agree">I agree</label>'
                    '<button type="submit">Place order</button></form>'
                )
                return self._send(_page("Checkout", error + form))
            if url.path == "/confirm" and shop.order:
                who = html.escape(shop.order["name"])
                body = (
                    f"<p>Order for {who}, {shop.order['ship']}</p>"
                    '<form method="post" action="/confirm"><button>Confirm</button></form>'
                    '<a href="/checkout">Back</a>'
                )
                return self._send(_page("Confirm", body))
            if url.path == "/done" and shop.order.get("placed"):
                return self._send(_page("Thanks", "<p>Order placed</p>"))
            self._send(_page("Not found", '<a href="/">Home</a>'), 404)

        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            form = urllib.parse.parse_qs(self.rfile.read(size).decode())
            if self.path == "/reset":
                shop.cart, shop.order = [], {}
                shop.resets += 1
                return self._send(b"ok")
            if self.path == "/add":
                shop.cart.append(form.get("item", ["?"])[0])
                return self._send(b"", 303, "/cart")
            if self.path == "/order":
                name = form.get("name", [""])[0]
                if not name or "agree" not in form:
                    return self._send(b"", 303, "/checkout?error=1")
                shop.order = {"name": name, "ship": form.get("ship", ["?"])[0]}
                return self._send(b"", 303, "/confirm")
            if self.path == "/confirm" and shop.order:
                shop.order["placed"] = "yes"
                return self._send(b"", 303, "/done")
            self._send(b"", 303, "/")

    return Handler


def serve() -> tuple[ThreadingHTTPServer, Shop, str]:
    """Start the shop on a free port of 127.0.0.1; returns (server, shop, base URL)."""
    shop = Shop()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(shop))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, shop, f"http://127.0.0.1:{server.server_address[1]}"
