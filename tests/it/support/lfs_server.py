"""The test LFS server: giftless (a kept Git LFS server, from PyPI) over TLS on 127.0.0.1.

    python lfs_server.py STATE_DIR TOKEN TAMPER

STATE_DIR holds cert.pem/key.pem (made by tests/it/support/lfs.rs with openssl), storage/ (the
objects: storage/ORG/REPO/OID), and gets port (the port it listens on) and requests.log (one
line a request: METHOD HOST PATH auth=yes|no). The batch API answers only with
`Authorization: RemoteAuth TOKEN` (what the test's git-lfs-authenticate hands out).

TAMPER makes it a hostile server for the bad-input tests, by rewriting giftless's batch answer:
none; http (hrefs become http://); other-host (hrefs go to https://localhost:PORT, another
origin with the same certificate); size (the answer's sizes are one more than asked); stall (a
download sends its headers and half its body, then nothing: a server that hangs mid-body).
"""
import json
import os
import ssl
import sys
import time

from giftless.app import init_app
from werkzeug.serving import make_server

state, token, tamper = sys.argv[1], sys.argv[2], sys.argv[3]
JWT_KEY = "keyclone-test-jwt-key-" + "0" * 32

app = init_app(
    additional_config={
        "TRANSFER_ADAPTERS": {
            "basic": {
                "options": {"storage_options": {"path": os.path.join(state, "storage")}}
            }
        },
        "LEGACY_ENDPOINTS": False,
        # giftless signs its download links (a JWT in the query); the same key checks them.
        "AUTH_PROVIDERS": [
            {"factory": "giftless.auth.jwt:factory", "options": {"private_key": JWT_KEY}},
            "giftless.auth.allow_anon:read_only",
        ],
        "PRE_AUTHORIZED_ACTION_PROVIDER": {
            "factory": "giftless.auth.jwt:factory",
            "options": {"private_key": JWT_KEY, "default_lifetime": 600},
        },
    }
)
inner = app.wsgi_app


def log(environ, authorized):
    line = "{} {} {} auth={}\n".format(
        environ.get("REQUEST_METHOD"),
        environ.get("HTTP_HOST"),
        environ.get("PATH_INFO"),
        "yes" if environ.get("HTTP_AUTHORIZATION") else "no",
    )
    with open(os.path.join(state, "requests.log"), "a") as f:
        f.write(line)


def rewrite(body, host):
    answer = json.loads(body)
    for o in answer.get("objects", []):
        if tamper == "size" and "size" in o:
            o["size"] += 1
        dl = o.get("actions", {}).get("download")
        if dl and tamper == "http":
            dl["href"] = dl["href"].replace("https://", "http://", 1)
        if dl and tamper == "other-host":
            dl["href"] = dl["href"].replace("https://" + host, "https://localhost:" + host.split(":")[1], 1)
    return json.dumps(answer).encode()


def stall(environ, start_response):
    captured = {}

    def capture(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    body = b"".join(inner(environ, capture))
    headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
    headers.append(("Content-Length", str(len(body))))
    start_response(captured["status"], headers)
    yield body[: len(body) // 2]
    time.sleep(3600)


def middleware(environ, start_response):
    batch = environ.get("PATH_INFO", "").endswith("/objects/batch")
    log(environ, bool(environ.get("HTTP_AUTHORIZATION")))
    if batch and environ.get("HTTP_AUTHORIZATION") != "RemoteAuth " + token:
        start_response("401 Unauthorized", [("Content-Type", "application/vnd.git-lfs+json")])
        return [b'{"message":"credentials needed"}']
    if not batch and tamper == "stall" and environ.get("REQUEST_METHOD") == "GET":
        return stall(environ, start_response)
    if not batch or tamper in ("none", "stall"):
        return inner(environ, start_response)
    captured = {}

    def capture(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    body = b"".join(inner(environ, capture))
    if captured["status"].startswith("200"):
        body = rewrite(body, environ.get("HTTP_HOST"))
    headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
    headers.append(("Content-Length", str(len(body))))
    start_response(captured["status"], headers)
    return [body]


app.wsgi_app = middleware
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(os.path.join(state, "cert.pem"), os.path.join(state, "key.pem"))
server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=context)
port = server.socket.getsockname()[1]
with open(os.path.join(state, "port.tmp"), "w") as f:
    f.write(str(port))
os.rename(os.path.join(state, "port.tmp"), os.path.join(state, "port"))
server.serve_forever()
