"""The demo stack's HTTP API on port 8080 (Python standard library + psycopg2).

  GET  /health   200 {"status": "ok", ...} only when PostgreSQL answers, else 503
  GET  /notes    the stored notes            (Authorization: Bearer <API_SECRET>)
  POST /notes    store the request body      (Authorization: Bearer <API_SECRET>)

Secrets live in /etc/emu/secrets.env (API_SECRET, DB_PASSWORD). emu-rotate replaces that
file at every `emu start`; the API re-reads it on the next request, so rotation needs no
restart. Its database session (application_name "emu-api") survives the rotation; any
new session logs in with the new password. Secrets are never logged or echoed: /health
reports only a short hash of the API secret.

On SIGHUP (sent by emu-rotate once it has written secrets.env.new and runtime.env.new)
the API renames both files into place, sets the app role's new password over the session
it already has and ends every other session of the role, then answers "ok ID" or
"failed ID" on the FIFO /run/emu-api/rotated (ID: the file's ROTATION_ID). Right after a
resume that is far cheaper than `mv` and psql processes and a new PostgreSQL backend;
emu-rotate does it all itself when the API cannot.
"""
import base64
import hashlib
import hmac
import json
import os
import signal
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2

SECRETS = "/etc/emu/secrets.env"
RUNTIME = "/run/emu/runtime.env"
RUN_DIR = "/run/emu-api"  # systemd's RuntimeDirectory, owned by emu-api
ANSWERS = RUN_DIR + "/rotated"
PID_FILE = RUN_DIR + "/api.pid"
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

    def _connect(self):
        if self.conn is None:
            conn = psycopg2.connect(
                host="127.0.0.1", dbname="app", user="app",
                password=self.secrets.get("DB_PASSWORD", ""), connect_timeout=3,
                application_name="emu-api")
            conn.autocommit = True
            # The other sessions of the role, as a prepared statement run once now: its
            # plan is cached in this session (and in a snapshot of it), so a rotation right
            # after a resume skips the parser's analysis and the planner, each a first run
            # under emulation. It only lists; rotate() ends them.
            try:
                with conn.cursor() as cur:
                    cur.execute("PREPARE other_sessions AS SELECT pid"
                                " FROM pg_stat_get_activity(NULL)"
                                " WHERE usesysid = 'app'::regrole AND pid <> pg_backend_pid()")
                    cur.execute("EXECUTE other_sessions")
            except Exception:
                conn.close()
                raise
            self.conn = conn
        return self.conn

    @staticmethod
    def scram_verifier(password, iterations=16):
        """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677).

        PostgreSQL 15 stretches a plain password with 4096 PBKDF2 iterations, about 70 ms
        here even when warm (and several times that right after a resume, under
        emulation). Stretching only slows the guessing of a weak password; emu's are 256
        random bits, so a few iterations lose nothing and logins get cheaper too.
        """
        salt = os.urandom(16)
        salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        b64 = lambda b: base64.b64encode(b).decode()
        return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"

    def rotate(self):
        """Puts emu-rotate's new files in place, applies the new DB_PASSWORD over this
        session, answers — always, within about 15 s: emu-rotate waits without a timeout."""
        # Read first: the answer names this run even when the rest fails. Only a rotation
        # renames these files, and emu runs one at a time.
        new = read_env(SECRETS + ".new") or read_env(SECRETS)
        ok = False
        # A request stuck on the database holds the lock: give up on it, answer "failed",
        # and emu-rotate sets the password with psql.
        if self.lock.acquire(timeout=10):
            try:
                # Renamed here, not by `mv` processes (each a first run under emulation).
                for path in (SECRETS, RUNTIME):
                    try:
                        os.replace(path + ".new", path)
                    except FileNotFoundError:
                        pass
                # The session logged in with an earlier password; without one, log in with
                # the secrets read before this rotation.
                with self._connect().cursor() as cur:
                    password = new.get("DB_PASSWORD", "")
                    if len(password) < 32:
                        raise ValueError("DB_PASSWORD is too short for a light verifier")
                    # One round trip. The commit does not wait for its WAL to reach the
                    # disk (the WAL writer flushes it within 200 ms): a crash in that
                    # window loses only this password, and every start rotates anew.
                    # EXECUTE runs after the COMMIT: a session it lists logged in with an
                    # old password.
                    cur.execute("BEGIN; SET LOCAL synchronous_commit TO off;"
                                " SET LOCAL statement_timeout TO '5s';"
                                " ALTER ROLE app PASSWORD %s; COMMIT; EXECUTE other_sessions",
                                (self.scram_verifier(password),))
                    for (pid,) in cur.fetchall():
                        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
                ok = True
            except Exception:
                self._drop()
            finally:
                try:
                    self._refresh()
                except OSError:
                    pass  # no secrets file: the next request reports it
                self.lock.release()
        answer(("ok " if ok else "failed ") + new.get("ROTATION_ID", ""))

    def api_secret(self):
        with self.lock:
            self._refresh()
            return self.secrets.get("API_SECRET", "")

    def query(self, sql, args=()):
        with self.lock:
            self._refresh()
            for attempt in (1, 2):
                try:
                    with self._connect().cursor() as cur:
                        cur.execute(sql, args)
                        return cur.fetchall() if cur.description else []
                except psycopg2.OperationalError:
                    # A connection the server closed (restart, restore): retry once.
                    self._drop()
                    if attempt == 2:
                        raise


STATE = State()


def answer(text):
    """Writes one line to emu-rotate's FIFO; nobody reading (it gave up) drops it."""
    try:
        fd = os.open(ANSWERS, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    try:
        os.write(fd, (text + "\n").encode())
    except OSError:
        pass
    finally:
        os.close(fd)


def listen_for_rotation():
    try:
        if not stat.S_ISFIFO(os.lstat(ANSWERS).st_mode):
            os.unlink(ANSWERS)
            os.mkfifo(ANSWERS, 0o600)
    except FileNotFoundError:
        os.mkfifo(ANSWERS, 0o600)
    signal.signal(signal.SIGHUP,
                  lambda *_: threading.Thread(target=STATE.rotate, daemon=True).start())
    with open(PID_FILE + ".new", "w", encoding="utf-8") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(PID_FILE + ".new", PID_FILE)


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
    listen_for_rotation()
    ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
