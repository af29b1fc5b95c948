"""A local HTTPS stand-in for the endpoints where providers publish their SSH host keys
(GitHub's `GET https://api.github.com/meta`, JSON with `ssh_keys: ["TYPE BASE64", ...]`;
Bitbucket's `GET https://bitbucket.org/site/ssh`, known_hosts lines as text/plain).

Usage: meta_server.py CERT KEY ROUTES. Listens on 127.0.0.1 on a free port, prints the port on
the first line of stdout, and answers each request from ROUTES (re-read per request, so a test
changes the answers while it runs): a JSON object mapping a path to
{"status": 200, "type": "application/json", "body": "...", "location": "..."}. An unknown
path is a 404. Python standard library only.
"""

import http.server
import json
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(sys.argv[3], encoding="utf-8") as f:
            routes = json.load(f)
        route = routes.get(self.path, {"status": 404, "type": "text/plain", "body": "not found"})
        body = route.get("body", "").encode()
        self.send_response(route.get("status", 200))
        if "type" in route:
            self.send_header("Content-Type", route["type"])
        if "location" in route:
            self.send_header("Location", route["location"])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[1], sys.argv[2])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
