#!/usr/bin/env python3
"""A stand-in for the providers' key APIs, for keyclone's tests only.

The tests cannot reach GitHub, GitLab, Gitea/Forgejo or their OAuth servers, so this server on
127.0.0.1 (HTTPS, its certificate signed by a CA the test makes at run time) answers their
endpoints with the status codes and bodies the providers document:

- GitHub REST, "Create a public SSH key for the authenticated user"
  (https://docs.github.com/rest/users/keys): POST /api/v3/user/keys {title, key} -> 201; 422
  {"message":"Validation Failed","errors":[{"field":"key","message":"key is already in use"}]};
  401 {"message":"Bad credentials"}; 404 {"message":"Not Found"} when the token lacks
  write:public_key (github/docs#25932); 403 with x-ratelimit-remaining: 0 when rate limited.
  POST /api/v3/user/ssh_signing_keys likewise (scope write:ssh_signing_key). GET /api/v3/user.
- GitLab, "User SSH keys" (https://docs.gitlab.com/api/user_keys/): POST /api/v4/user/keys
  {title, key, usage_type} -> 201 (usage_type auth, signing or auth_and_signing, the default;
  a key for signing alone does not log in; GET lists each key's usage_type); 400 {"message":{"fingerprint_sha256":["has already been
  taken"]}}; 401 {"error":"invalid_token","error_description":"Token is expired. ..."}; 403
  {"error":"insufficient_scope",...} without the api scope; 429 with Retry-After.
- Gitea/Forgejo swagger, userCurrentPostKey: POST /api/v1/user/keys {key, title, read_only}
  -> 201; 422 {"message":"Key content has been used as non-deploy key"}; 403 "token does not
  have at least one of required scope(s): [write:user]".
- Bitbucket Cloud REST 2.0 (https://developer.atlassian.com/cloud/bitbucket/rest/api-group-users/
  and api-group-ssh/), HTTP Basic with the Atlassian account's e-mail and an API token:
  GET /2.0/user -> 200 {type: "user", uuid: "{...}", display_name, nickname, account_id}
  (scope read:user:bitbucket); POST /2.0/users/{uuid}/ssh-keys {key, label} -> 201 an
  ssh_account_key {type: "ssh_key", uuid, key, label, comment} (scope write:ssh-key:bitbucket);
  GET of the same -> 200 a page {pagelen, values: [...], page, size} (read:ssh-key:bitbucket).
  Bitbucket's error object is {"type":"error","error":{"message":...}}: 400 "Someone has
  already registered that SSH key." when the key is taken (Atlassian's KB "Why am I not able to
  add an SSH key"); 401 for a bad token or a token with another account's e-mail; 403 "Your
  credentials lack one or more required privilege scopes." with detail.required; 429 when rate
  limited (no Retry-After).
- OAuth device flow, RFC 8628 as GitHub documents it ("Authorizing OAuth apps", device flow):
  POST /login/device/code, POST /login/oauth/access_token; GitLab's /oauth/authorize_device and
  /oauth/token. Poll answers: authorization_pending, slow_down (with interval), expired_token,
  access_denied, then the token.

An added key is appended to the test sshd's AuthorizedKeysFile, so upload -> test -> clone runs
for real. Every request is logged (method, path, auth scheme, JSON body; never the token) to
the log file as one JSON line.

Usage: provider_api.py CONFIG.json   (the config is written by tests/it/support/https.rs)
"""

import base64
import json
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONFIG = json.load(open(sys.argv[1]))
LOCK = threading.Lock()
# user -> list of key materials ("type base64")
KEYS = {u: list(ks) for u, ks in CONFIG.get("keys", {}).items()}
# Signing keys are their own list on GitHub: the same key may be both (docs: ssh-signing-keys).
SIGNING_KEYS = {u: list(ks) for u, ks in CONFIG.get("signing_keys", {}).items()}
# GitLab's usage_type of each key material (auth, signing, auth_and_signing).
USAGE = dict(CONFIG.get("usage", {}))
DEVICE_STATES = list(CONFIG.get("device", {}).get("states", []))


def material(line):
    return " ".join(line.split()[:2])


def log(entry):
    with LOCK, open(CONFIG["log"], "a") as f:
        f.write(json.dumps(entry) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, status, body, content_type="application/json; charset=utf-8", headers=()):
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        ctype = self.headers.get("Content-Type", "")
        if "json" in ctype:
            return json.loads(raw or b"{}")
        if "form" in ctype:
            return {k: v[0] for k, v in urllib.parse.parse_qs(raw.decode()).items()}
        return {}

    def token(self):
        auth = self.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        self.basic_user = None
        if scheme == "Basic":
            user, _, secret = base64.b64decode(value).decode().partition(":")
            self.basic_user = user
            return scheme, secret
        return scheme, value

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def handle_any(self, method):
        path = urllib.parse.urlparse(self.path).path
        body = self.body()
        scheme, tok = self.token()
        known = CONFIG.get("tokens", {}).get(tok)
        logged = {k: v for k, v in body.items() if k not in ("device_code",)}
        log({"method": method, "path": path, "auth": scheme, "known_token": known is not None,
             "body": logged})
        mode = CONFIG.get("mode", "normal")
        if mode == "html":
            return self.send(200, "<html><body>Sign in</body></html>", "text/html; charset=utf-8")
        if mode == "500":
            return self.send(500, {"message": "Server Error"})
        if mode == "redirect":
            return self.send(307, {}, headers=[("Location", CONFIG["redirect_to"] + self.path)])
        if path in ("/login/device/code", "/oauth/authorize_device"):
            return self.device_code(body)
        if path in ("/login/oauth/access_token", "/oauth/token"):
            return self.device_poll(body)
        if path.startswith("/2.0/"):
            return self.bitbucket(method, urllib.parse.unquote(path[len("/2.0/"):]), body, known)
        flavor = {"/api/v3/": "github", "/api/v4/": "gitlab", "/api/v1/": "gitea"}
        for prefix, name in flavor.items():
            if path.startswith(prefix):
                return self.api(name, method, path[len(prefix):], body, known)
        self.send(404, {"message": "Not Found"})

    def api(self, flavor, method, rest, body, known):
        if mode_is("ratelimit"):
            if flavor == "github":
                reset = str(int(time.time()) + 60)
                return self.send(403, {"message": "API rate limit exceeded"},
                                 headers=[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", reset)])
            return self.send(429, {"message": "Retry later"}, headers=[("Retry-After", "60")])
        if known is None or known.get("expired"):
            return self.send(401, {
                "github": {"message": "Bad credentials"},
                "gitlab": {"error": "invalid_token",
                           "error_description": "Token is expired. You can either do re-authorization or token refresh."},
                "gitea": {"message": "user does not exist"},
            }[flavor])
        user = known["user"]
        if rest == "user" and method == "GET":
            return self.send(200, {"login": user, "username": user, "name": known.get("name"),
                                   "full_name": known.get("name"), "email": known.get("email"),
                                   "commit_email": known.get("email")})
        signing = rest == "user/ssh_signing_keys"
        if rest not in ("user/keys", "user/ssh_signing_keys"):
            return self.send(404, {"message": "Not Found"})
        need = {"github": "write:ssh_signing_key" if signing else "write:public_key",
                "gitlab": "api", "gitea": "write:user"}[flavor]
        scopes = known.get("scopes", [])
        read_ok = need in scopes or (flavor == "github" and "read:public_key" in scopes)
        if method == "GET":
            if not read_ok:
                return self.missing_scope(flavor, need)
            mine = (SIGNING_KEYS if signing else KEYS).get(user, [])
            listed = [{"id": i + 1, "key": k, "title": "k"} for i, k in enumerate(mine)]
            if flavor == "gitlab":
                for entry in listed:
                    entry["usage_type"] = USAGE.get(entry["key"], "auth_and_signing")
            return self.send(200, listed)
        if need not in scopes:
            return self.missing_scope(flavor, need)
        key = material(body.get("key", ""))
        store = SIGNING_KEYS if signing else KEYS
        with LOCK:
            taken = any(key in ks for ks in store.values())
            if not taken:
                store.setdefault(user, []).append(key)
                if flavor == "gitlab":
                    USAGE[key] = body.get("usage_type", "auth_and_signing")
        if taken:
            return self.send(*{
                "github": (422, {"message": "Validation Failed", "errors": [
                    {"resource": "PublicKey", "code": "custom", "field": "key",
                     "message": "key is already in use"}]}),
                "gitlab": (400, {"message": {"fingerprint_sha256": ["has already been taken"]}}),
                "gitea": (422, {"message": "Key content has been used as non-deploy key"}),
            }[flavor])
        # A GitLab key for signing alone does not log in.
        logs_in = not signing and USAGE.get(key) != "signing"
        if CONFIG.get("authorized_keys") and logs_in:
            with LOCK, open(CONFIG["authorized_keys"], "a") as f:
                f.write(key + "\n")
        self.send(201, {"id": 1, "key": key, "title": body.get("title") or body.get("label")})

    def bitbucket_error(self, status, message, **more):
        error = {"message": message}
        error.update(more)
        return self.send(status, {"type": "error", "error": error})

    def bitbucket(self, method, rest, body, known):
        if mode_is("ratelimit"):
            return self.bitbucket_error(429, "Rate limit for this resource has been exceeded")
        # An API token goes with the e-mail of its Atlassian account, Basic authentication.
        if known is None or known.get("expired") or \
                getattr(self, "basic_user", None) != known.get("email"):
            return self.bitbucket_error(401, "Token is invalid, expired, or not supported for this endpoint.")
        user = known["user"]
        uuid = known.get("uuid", "{ed08f5e1-605b-4f4a-aee4-6c97628a673e}")
        scopes = known.get("scopes", [])

        def lacks(need):
            if need in scopes:
                return False
            self.bitbucket_error(403, "Your credentials lack one or more required privilege scopes.",
                                 detail={"granted": scopes, "required": [need]})
            return True

        if rest == "user" and method == "GET":
            if lacks("read:user:bitbucket"):
                return
            return self.send(200, {"type": "user", "uuid": uuid, "display_name": known.get("name"),
                                   "nickname": user, "account_id": "5b10ac8d82e05b22cc7d4ef5"})
        if rest != f"users/{uuid}/ssh-keys":
            return self.bitbucket_error(404, "Resource not found")
        if method == "GET":
            if lacks("read:ssh-key:bitbucket"):
                return
            mine = KEYS.get(user, [])
            values = [{"type": "ssh_key", "uuid": "{k%d}" % i, "key": k, "label": "k"}
                      for i, k in enumerate(mine)]
            return self.send(200, {"pagelen": 100, "values": values, "page": 1, "size": len(values)})
        if lacks("write:ssh-key:bitbucket"):
            return
        key = material(body.get("key", ""))
        with LOCK:
            taken = any(key in ks for ks in KEYS.values())
            if not taken:
                KEYS.setdefault(user, []).append(key)
        if taken:
            return self.bitbucket_error(400, "Someone has already registered that SSH key.")
        if CONFIG.get("authorized_keys"):
            with LOCK, open(CONFIG["authorized_keys"], "a") as f:
                f.write(key + "\n")
        self.send(201, {"type": "ssh_key", "uuid": "{new}", "key": key,
                        "label": body.get("label"), "comment": ""})

    def missing_scope(self, flavor, need):
        if flavor == "github":
            return self.send(404, {"message": "Not Found",
                                   "documentation_url": "https://docs.github.com/rest/users/keys"})
        if flavor == "gitlab":
            return self.send(403, {"error": "insufficient_scope",
                                   "error_description": "The request requires higher privileges than provided by the access token.",
                                   "scope": need})
        return self.send(403, {"message": f"token does not have at least one of required scope(s): [{need}]"})

    def device_code(self, body):
        dev = CONFIG.get("device", {})
        if body.get("client_id") != dev.get("client_id"):
            return self.send(400, {"error": "incorrect_client_credentials"})
        base = f"https://localhost:{self.server.server_port}"
        self.send(200, {"device_code": "device-code-1", "user_code": "WDJB-MJHT",
                        "verification_uri": base + "/login/device", "expires_in": 900, "interval": 1})

    def device_poll(self, body):
        dev = CONFIG["device"]
        if body.get("device_code") != "device-code-1" or body.get("grant_type") != \
                "urn:ietf:params:oauth:grant-type:device_code":
            return self.send(400, {"error": "incorrect_device_code"})
        with LOCK:
            state = DEVICE_STATES.pop(0) if DEVICE_STATES else "ok"
        if state == "ok":
            return self.send(200, {"access_token": dev["token"], "token_type": "bearer",
                                   "scope": "write:public_key"})
        answer = {"error": state}
        if state == "slow_down":
            answer["interval"] = 1
        self.send(400 if CONFIG.get("device_status_400") else 200, answer)


def mode_is(m):
    return CONFIG.get("mode") == m


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(CONFIG["cert"], CONFIG["key"])
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    with open(CONFIG["port_file"] + ".tmp", "w") as f:
        f.write(str(server.server_port))
    import os
    os.rename(CONFIG["port_file"] + ".tmp", CONFIG["port_file"])
    server.serve_forever()


if __name__ == "__main__":
    main()
