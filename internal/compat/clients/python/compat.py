"""psycopg 2 and psycopg 3 clients of pgwarden's compatibility matrix.

The contract (environment, schema, cases, output) is internal/compat/doc.go.
Run with Debian's interpreter, which has Debian's python3-psycopg2 and
python3-psycopg:

    /usr/bin/python3 compat.py psycopg2
    /usr/bin/python3 compat.py psycopg

Each case runs on a fresh connection with sslmode=verify-full, so a case that
breaks its connection cannot fail the cases after it.
"""

import io
import os
import sys
import threading

CASE_TIMEOUT = 8.0  # seconds; a watchdog ends the program if a case hangs

PLAINTEXT = ("alice@example.com", "bob@example.org", "alice@", "bob@")
MASKED = ("***@example.com", "***@example.org")


def env(name):
    value = os.environ.get(name, "")
    if not value:
        raise SystemExit(f"{name} is not set")
    return value


HOST = env("PGW_HOST")
PORT = int(env("PGW_PORT"))
DATABASE = env("PGW_DATABASE")
SSLROOTCERT = env("PGW_SSLROOTCERT")
USER = env("PGW_USER")
PASSWORD = env("PGW_PASSWORD")  # SCRAM password or OIDC access token
BASE = int(env("PGW_ID_BASE"))

CONNINFO = dict(
    host=HOST,
    port=PORT,
    dbname=DATABASE,
    user=USER,
    password=PASSWORD,
    sslmode="verify-full",
    sslrootcert=SSLROOTCERT,
    connect_timeout=5,
)


class CaseFailed(Exception):
    pass


def expect_equal(what, got, want):
    if got != want:
        raise CaseFailed(f"{what}: got {got!r}, want {want!r}")


def no_plaintext(what, *received):
    text = repr(received)
    for p in PLAINTEXT:
        if p in text:
            raise CaseFailed(f"{what}: plaintext {p!r} reached the client")


def check_refused_delete(err):
    """err is what the refused DELETE raised, or None if it succeeded."""
    if err is None:
        raise CaseFailed("DELETE succeeded, want SQLSTATE 42501 from rule no-deletes")
    code = getattr(err, "pgcode", None) or getattr(err, "sqlstate", None)
    if code != "42501":
        raise CaseFailed(f"DELETE failed with SQLSTATE {code}, want 42501: {err}")
    if "no-deletes" not in str(err):
        raise CaseFailed(f"DELETE error does not name no-deletes: {err}")


# --- psycopg 2 -------------------------------------------------------------
#
# psycopg2 always speaks the simple query protocol: it interpolates
# parameters client-side (%s placeholders become quoted literals) and sends
# one Query message. Its "parameterized" case therefore checks that
# client-side interpolated parameters go through; the extended protocol is
# covered by the other clients and by psycopg 3.


class Psycopg2:
    name = "psycopg2"

    def __init__(self):
        import psycopg2

        self.pg = psycopg2

    def connect(self):
        conn = self.pg.connect(application_name="pgwarden-compat-psycopg2", **CONNINFO)
        conn.autocommit = True
        return conn

    def received_notices(self, conn):
        return list(conn.notices)

    def case_connect(self, conn):
        pass  # connect() authenticated over verified TLS

    def case_simple(self, conn):
        with conn.cursor() as cur:
            cur.execute("SELECT name FROM compat_items ORDER BY id")  # no params: sent as is
            expect_equal("SELECT name", [r[0] for r in cur.fetchall()], ["alpha", "beta", "gamma"])

    def case_parameterized(self, conn):
        with conn.cursor() as cur:
            # Interpolated client-side (see above): the server gets "... WHERE id = 2".
            cur.execute("SELECT name FROM compat_items WHERE id = %s", (2,))
            expect_equal("WHERE id = %s", cur.fetchall(), [("beta",)])
            cur.execute("SELECT %s::int + 1", (41,))
            expect_equal("%s::int + 1", cur.fetchall(), [(42,)])

    def case_transaction(self, conn):
        conn.autocommit = False  # psycopg2 sends BEGIN before the first statement
        delete_err = None
        try:
            with conn.cursor() as cur:
                cur.execute("INSERT INTO compat_items VALUES (%s, 'tx')", (BASE + 1,))
                try:
                    cur.execute("DELETE FROM compat_items WHERE id = %s", (BASE + 1,))
                except self.pg.Error as err:
                    delete_err = err
        finally:
            conn.rollback()  # ROLLBACK
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM compat_items WHERE id = %s", (BASE + 1,))
            count = cur.fetchone()[0]
        check_refused_delete(delete_err)
        expect_equal("count after ROLLBACK", count, 0)

    def case_masked(self, conn):
        with conn.cursor() as cur:
            cur.execute("SELECT id, email FROM compat_customers ORDER BY id")
            rows = cur.fetchall()
            cur.execute("SELECT email FROM compat_customers WHERE id = %s", (1,))
            one = cur.fetchall()
        no_plaintext("masked", rows, one, self.received_notices(conn))
        expect_equal("SELECT id, email", rows, [(1, MASKED[0]), (2, MASKED[1])])
        expect_equal("SELECT email WHERE id = %s", one, [(MASKED[0],)])

    def case_copy(self, conn):
        conn.autocommit = False  # BEGIN
        try:
            with conn.cursor() as cur:
                data = io.StringIO(f"{BASE + 2}\tcopy-a\n{BASE + 3}\tcopy-b\n")
                cur.copy_expert("COPY compat_items (id, name) FROM STDIN", data)
                expect_equal("COPY FROM rows", cur.rowcount, 2)
                cur.execute("SELECT count(*) FROM compat_items WHERE id > %s", (BASE,))
                expect_equal("count after COPY FROM", cur.fetchone()[0], 2)
        finally:
            conn.rollback()
        conn.autocommit = True
        out = io.StringIO()
        with conn.cursor() as cur:
            cur.copy_expert("COPY (SELECT id, email FROM compat_customers ORDER BY id) TO STDOUT", out)
        no_plaintext("COPY TO", out.getvalue(), self.received_notices(conn))
        expect_equal("COPY TO output", out.getvalue(), f"1\t{MASKED[0]}\n2\t{MASKED[1]}\n")

    def describe(self, err):
        code = getattr(err, "pgcode", None)
        return f"{err} (SQLSTATE {code})" if code else str(err)


# --- psycopg 3 -------------------------------------------------------------
#
# psycopg 3 binds parameters server-side: a query with parameters goes out
# as Parse/Bind/Describe/Execute/Sync (PQsendQueryParams), a query without
# parameters and without binary results as a simple Query (PQsendQuery). The
# simple case passes prepare=False so psycopg never turns it into a prepared
# statement; prepare=True asks for a named server-side prepared statement.


class Psycopg3:
    name = "psycopg"

    def __init__(self):
        import psycopg

        self.pg = psycopg

    def connect(self):
        conn = self.pg.connect(
            application_name="pgwarden-compat-psycopg", autocommit=True, **CONNINFO
        )
        conn.received = []
        conn.add_notice_handler(
            lambda d: conn.received.append((d.message_primary, d.message_detail, d.message_hint))
        )
        return conn

    def case_connect(self, conn):
        pass  # connect() authenticated over verified TLS

    def case_simple(self, conn):
        rows = conn.execute("SELECT name FROM compat_items ORDER BY id", prepare=False).fetchall()
        expect_equal("SELECT name", [r[0] for r in rows], ["alpha", "beta", "gamma"])

    def case_parameterized(self, conn):
        q = "SELECT name FROM compat_items WHERE id = %s"
        expect_equal("unnamed statement", conn.execute(q, (2,)).fetchall(), [("beta",)])
        # A named server-side prepared statement, prepared once and executed twice.
        for want_id, want in ((2, "beta"), (3, "gamma")):
            got = conn.execute(q, (want_id,), prepare=True).fetchall()
            expect_equal(f"prepared statement, id {want_id}", got, [(want,)])
        expect_equal("%s::int + 1", conn.execute("SELECT %s::int + 1", (41,)).fetchall(), [(42,)])
        # Binary parameter (%b) and binary results.
        with conn.cursor(binary=True) as cur:
            got = cur.execute("SELECT %b::int + 1", (41,)).fetchall()
            expect_equal("%b::int + 1 (binary)", got, [(42,)])

    def case_transaction(self, conn):
        delete_err = None
        with conn.transaction(force_rollback=True):  # BEGIN ... ROLLBACK
            conn.execute("INSERT INTO compat_items VALUES (%s, 'tx')", (BASE + 1,))
            try:
                conn.execute("DELETE FROM compat_items WHERE id = %s", (BASE + 1,))
            except self.pg.Error as err:
                delete_err = err
        count = conn.execute(
            "SELECT count(*) FROM compat_items WHERE id = %s", (BASE + 1,)
        ).fetchone()[0]
        check_refused_delete(delete_err)
        expect_equal("count after ROLLBACK", count, 0)

    def case_masked(self, conn):
        rows = conn.execute("SELECT id, email FROM compat_customers ORDER BY id", prepare=False).fetchall()
        q = "SELECT email FROM compat_customers WHERE id = %s"
        one = conn.execute(q, (1,)).fetchall()
        with conn.cursor(binary=True) as cur:
            one_binary = cur.execute(q, (1,)).fetchall()
        no_plaintext("masked", rows, one, one_binary, conn.received)
        expect_equal("SELECT id, email", rows, [(1, MASKED[0]), (2, MASKED[1])])
        expect_equal("SELECT email WHERE id = %s", one, [(MASKED[0],)])
        expect_equal("SELECT email WHERE id = %s (binary results)", one_binary, [(MASKED[0],)])

    def case_copy(self, conn):
        with conn.transaction(force_rollback=True):  # BEGIN ... ROLLBACK
            with conn.cursor() as cur:
                with cur.copy("COPY compat_items (id, name) FROM STDIN") as copy:
                    copy.write_row((BASE + 2, "copy-a"))
                    copy.write_row((BASE + 3, "copy-b"))
                expect_equal("COPY FROM rows", cur.rowcount, 2)
                cur.execute("SELECT count(*) FROM compat_items WHERE id > %s", (BASE,))
                expect_equal("count after COPY FROM", cur.fetchone()[0], 2)
        out = bytearray()
        with conn.cursor() as cur:
            with cur.copy("COPY (SELECT id, email FROM compat_customers ORDER BY id) TO STDOUT") as copy:
                for chunk in copy:
                    out += chunk
        text = out.decode()
        no_plaintext("COPY TO", text, conn.received)
        expect_equal("COPY TO output", text, f"1\t{MASKED[0]}\n2\t{MASKED[1]}\n")

    def describe(self, err):
        code = getattr(err, "sqlstate", None)
        return f"{err} (SQLSTATE {code})" if code else str(err)


# --- runner ----------------------------------------------------------------

CASES = ("connect", "simple", "parameterized", "transaction", "masked", "copy")
DRIVERS = {"psycopg2": Psycopg2, "psycopg": Psycopg3}


def one_line(text):
    text = " ".join(str(text).split())
    return text.replace(PASSWORD, "[password]")


def run_case(driver, case):
    conn = driver.connect()
    try:
        getattr(driver, "case_" + case)(conn)
    finally:
        try:
            conn.close()
        except Exception:
            pass


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in DRIVERS:
        print(f"usage: {sys.argv[0]} {'|'.join(DRIVERS)}", file=sys.stderr)
        return 2
    driver = DRIVERS[sys.argv[1]]()
    failed = 0
    for case in CASES:
        # The watchdog runs in its own thread: it fires even while libpq blocks.
        def timeout(case=case):
            print(f"FAIL {case}: timed out after {CASE_TIMEOUT:g} s", flush=True)
            os._exit(1)

        watchdog = threading.Timer(CASE_TIMEOUT, timeout)
        watchdog.daemon = True
        watchdog.start()
        try:
            run_case(driver, case)
            print(f"ok {case}", flush=True)
        except CaseFailed as err:
            failed += 1
            print(f"FAIL {case}: {one_line(err)}", flush=True)
        except Exception as err:  # a driver error: connection, SQL, TLS
            failed += 1
            print(f"FAIL {case}: {one_line(driver.describe(err))}", flush=True)
        finally:
            watchdog.cancel()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
