"""The demo stack's HTTP API on port 8080 (Python standard library + psycopg2).

  GET  /health   200 {"status": "ok", ...} only when PostgreSQL answers, else 503
  GET  /notes    the stored notes            (Authorization: Bearer <API_SECRET>)
  POST /notes    store the request body      (Authorization: Bearer <API_SECRET>)

Secrets live in /etc/emu/secrets.env (API_SECRET, DB_PASSWORD). emu-rotate replaces that
file at every `emu start`; the API re-reads it on the next request, so rotation needs no
restart. Its database session (application_name "emu-api") survives the rotation; any
new session logs in with the new password. Secrets are never logged or echoed: /health
reports only a short hash of the API secret.
"""
import hashlib
import hmac
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2

SECRETS = "/etc/emu/secrets.env"
RUNTIME = "/run/emu/runtime.env"
MAX_BODY = 64 * 1024


def read_env(path):
    values = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                key, sep, value = line.rstrip("\n").partition("=")
                if sep:
                    values[key] = value
    except FileNotFoundError:
        pass
    return values


class State:
    """The current secrets and one database connection, renewed when the secrets change."""

    def __init__(self):
        self.lock = threading.Lock()
        self.stamp = None
        self.secrets = {}
        self.conn = None

    def _refresh(self):
        st = os.stat(SECRETS)
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp != self.stamp:
            # The open session stays: it logged in before the rotation and emu-rotate
            # spares it; a new one (after a PostgreSQL restart) uses the new password.
            self.secrets = read_env(SECRETS)
            self.stamp = stamp

    def _drop(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None

    def api_secret(self):
        with self.lock:
            self._refresh()
            return self.secrets.get("API_SECRET", "")

    def query(self, sql, args=()):
        with self.lock:
            self._refresh()
            for attempt in (1, 2):
                if self.conn is None:
                    self.conn = psycopg2.connect(
                        host="127.0.0.1", dbname="app", user="app",
                        password=self.secrets.get("DB_PASSWORD", ""), connect_timeout=3,
                        application_name="emu-api")
                    self.conn.autocommit = True
                try:
                    with self.conn.cursor() as cur:
                        cur.execute(sql, args)
                        return cur.fetchall() if cur.description else []
                except psycopg2.OperationalError:
                    # A connection the server closed (restart, restore): retry once.
                    self._drop()
                    if attempt == 2:
                        raise


STATE = State()


class Handler(BaseHTTPRequestHandler):
    server_version = "emu-demo-api/1"

    def log_message(self, fmt, *args):
        pass  # requests carry secrets in headers: log nothing

    def _send(self, status, body):
        data = (json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorized(self):
        given = self.headers.get("Authorization", "")
        expected = "Bearer " + STATE.api_secret()
        return hmac.compare_digest(given.encode(), expected.encode())

    def do_GET(self):
        if self.path == "/health":
            try:
                STATE.query("SELECT 1")
            except Exception as err:
                self._send(503, {"status": "database unavailable", "error": type(err).__name__})
                return
            runtime = read_env(RUNTIME)
            secret_id = hashlib.sha256(STATE.api_secret().encode()).hexdigest()[:12]
            self._send(200, {"status": "ok", "instance": runtime.get("EMU_INSTANCE", ""),
                             "api_secret_sha256_12": secret_id})
        elif self.path == "/notes":
            if not self._authorized():
                self._send(401, {"error": "missing or wrong API secret"})
                return
            rows = STATE.query("SELECT id, body, created_at::text FROM notes ORDER BY id")
            self._send(200, [{"id": r[0], "body": r[1], "created_at": r[2]} for r in rows])
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self):
        if self.path != "/notes":
            self._send(404, {"error": "not found"})
            return
        if not self._authorized():
            self._send(401, {"error": "missing or wrong API secret"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._send(413, {"error": f"body over {MAX_BODY} bytes"})
            return
        body = self.rfile.read(length).decode("utf-8", "replace")
        rows = STATE.query("INSERT INTO notes (body) VALUES (%s) RETURNING id", (body,))
        self._send(201, {"id": rows[0][0]})


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
