// PostgreSQL JDBC driver (pgjdbc) client of pgwarden's compatibility matrix.
// The contract (environment, schema, cases, output) is internal/compat/doc.go.
// A single-file program, run from this directory with Debian's driver:
//
//   java -cp /usr/share/java/postgresql.jar Compat.java
//
// Each case runs on a fresh connection (sslmode=verify-full with the CA in
// sslrootcert), so a case that breaks its connection cannot fail the cases
// after it.

import java.io.StringReader;
import java.io.StringWriter;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.SQLWarning;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.Timer;
import java.util.TimerTask;
import org.postgresql.PGConnection;
import org.postgresql.copy.CopyManager;

public class Compat {
    static final long CASE_TIMEOUT_MS = 8000;
    static final List<String> PLAINTEXT = List.of("alice@example.com", "bob@example.org", "alice@", "bob@");
    static final String MASKED_1 = "***@example.com";
    static final String MASKED_2 = "***@example.org";

    static final String HOST = env("PGW_HOST");
    static final String PORT = env("PGW_PORT");
    static final String DATABASE = env("PGW_DATABASE");
    static final String SSLROOTCERT = env("PGW_SSLROOTCERT");
    static final String USER = env("PGW_USER");
    static final String PASSWORD = env("PGW_PASSWORD"); // SCRAM password or OIDC access token
    static final int BASE = Integer.parseInt(env("PGW_ID_BASE"));

    interface Case {
        void run(Connection conn) throws Exception;
    }

    static final class CaseFailed extends Exception {
        CaseFailed(String message) {
            super(message);
        }
    }

    static String env(String name) {
        String v = System.getenv(name);
        if (v == null || v.isEmpty()) {
            System.err.println(name + " is not set");
            System.exit(2);
        }
        return v;
    }

    // connect opens a connection with full TLS verification. pgjdbc reads a
    // PEM CA file from sslrootcert; verify-full also checks the host name.
    // extra holds further driver properties (preferQueryMode, prepareThreshold).
    static Connection connect(Map<String, String> extra) throws SQLException {
        String host = HOST.contains(":") ? "[" + HOST + "]" : HOST;
        String url = "jdbc:postgresql://" + host + ":" + PORT + "/" + enc(DATABASE)
                + "?sslmode=verify-full&sslrootcert=" + enc(SSLROOTCERT);
        Properties props = new Properties();
        props.setProperty("user", USER);
        props.setProperty("password", PASSWORD);
        // The driver's defaults otherwise, as applications have them: right
        // after the login pgjdbc runs SET extra_float_digits = 3 and SET
        // application_name = 'PostgreSQL JDBC Driver' (its default
        // ApplicationName), unless assumeMinServerVersion >= 9.0 moves both
        // into the startup packet.
        props.setProperty("connectTimeout", "5");
        props.putAll(extra);
        return DriverManager.getConnection(url, props);
    }

    static String enc(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }

    static void expectEqual(String what, Object got, Object want) throws CaseFailed {
        if (!Objects.equals(got, want)) {
            throw new CaseFailed(what + ": got " + got + ", want " + want);
        }
    }

    static void noPlaintext(String what, Object... received) throws CaseFailed {
        String text = List.of(received).toString();
        for (String p : PLAINTEXT) {
            if (text.contains(p)) {
                throw new CaseFailed(what + ": plaintext \"" + p + "\" reached the client");
            }
        }
    }

    // warnings returns the notices the server sent on conn.
    static List<String> warnings(Connection conn) throws SQLException {
        List<String> out = new ArrayList<>();
        for (SQLWarning w = conn.getWarnings(); w != null; w = w.getNextWarning()) {
            out.add(w.getMessage());
        }
        return out;
    }

    // column reads every row's first column as strings.
    static List<String> column(ResultSet rs) throws SQLException {
        List<String> out = new ArrayList<>();
        while (rs.next()) {
            out.add(rs.getString(1));
        }
        return out;
    }

    static List<String> queryColumn(Connection conn, String sql, int param) throws SQLException {
        try (PreparedStatement ps = conn.prepareStatement(sql)) {
            ps.setInt(1, param);
            try (ResultSet rs = ps.executeQuery()) {
                return column(rs);
            }
        }
    }

    // --- cases ----------------------------------------------------------------

    static void caseConnect(Connection conn) {
        // connect() authenticated over verified TLS; nothing more to do.
    }

    // A plain Statement: pgjdbc's default query mode still sends it with the
    // extended protocol (an unnamed Parse without parameters), so the same
    // query runs again on a connection with preferQueryMode=simple, where
    // pgjdbc sends a simple Query message.
    static void caseSimple(Connection conn) throws Exception {
        String sql = "SELECT name FROM compat_items ORDER BY id";
        List<String> want = List.of("alpha", "beta", "gamma");
        try (Statement st = conn.createStatement(); ResultSet rs = st.executeQuery(sql)) {
            expectEqual("Statement", column(rs), want);
        }
        try (Connection simple = connect(Map.of("preferQueryMode", "simple"));
                Statement st = simple.createStatement();
                ResultSet rs = st.executeQuery(sql)) {
            expectEqual("Statement, preferQueryMode=simple", column(rs), want);
        }
    }

    // PreparedStatement: the extended protocol, first with unnamed
    // statements, then with prepareThreshold=1 so pgjdbc prepares a named
    // server-side statement on first use and reuses it (with binary results
    // for int4, pgjdbc's default for server-prepared statements).
    static void caseParameterized(Connection conn) throws Exception {
        String byId = "SELECT name FROM compat_items WHERE id = ?";
        String plusOne = "SELECT ?::int + 1";
        expectEqual("WHERE id = ?", queryColumn(conn, byId, 2), List.of("beta"));
        expectEqual("?::int + 1", queryColumn(conn, plusOne, 41), List.of("42"));
        try (Connection named = connect(Map.of("prepareThreshold", "1"));
                PreparedStatement ps = named.prepareStatement(byId);
                PreparedStatement sum = named.prepareStatement(plusOne)) {
            for (int id : new int[] {2, 3}) {
                ps.setInt(1, id);
                try (ResultSet rs = ps.executeQuery()) {
                    expectEqual("named statement, id " + id, column(rs), List.of(id == 2 ? "beta" : "gamma"));
                }
            }
            for (int i = 0; i < 2; i++) {
                sum.setInt(1, 41);
                try (ResultSet rs = sum.executeQuery()) {
                    rs.next();
                    expectEqual("named ?::int + 1", rs.getInt(1), 42);
                }
            }
        }
    }

    static void caseTransaction(Connection conn) throws Exception {
        int id = BASE + 1;
        SQLException deleteErr = null;
        conn.setAutoCommit(false); // pgjdbc sends BEGIN with the first statement
        try {
            try (PreparedStatement ins = conn.prepareStatement("INSERT INTO compat_items VALUES (?, 'tx')")) {
                ins.setInt(1, id);
                ins.executeUpdate();
            }
            try (PreparedStatement del = conn.prepareStatement("DELETE FROM compat_items WHERE id = ?")) {
                del.setInt(1, id);
                del.executeUpdate();
            } catch (SQLException e) {
                deleteErr = e;
            }
        } finally {
            conn.rollback();
            conn.setAutoCommit(true);
        }
        List<String> count = queryColumn(conn, "SELECT count(*) FROM compat_items WHERE id = ?", id);
        if (deleteErr == null) {
            throw new CaseFailed("DELETE succeeded, want SQLSTATE 42501 from rule no-deletes");
        }
        if (!"42501".equals(deleteErr.getSQLState())) {
            throw new CaseFailed("DELETE failed with SQLSTATE " + deleteErr.getSQLState() + ", want 42501: "
                    + deleteErr.getMessage());
        }
        if (!String.valueOf(deleteErr.getMessage()).contains("no-deletes")) {
            throw new CaseFailed("DELETE error does not name no-deletes: " + deleteErr.getMessage());
        }
        expectEqual("count after ROLLBACK", count, List.of("0"));
    }

    static void caseMasked(Connection conn) throws Exception {
        List<String> rows = new ArrayList<>();
        try (Statement st = conn.createStatement();
                ResultSet rs = st.executeQuery("SELECT id, email FROM compat_customers ORDER BY id")) {
            while (rs.next()) {
                rows.add(rs.getInt(1) + "," + rs.getString(2));
            }
        }
        List<String> one = queryColumn(conn, "SELECT email FROM compat_customers WHERE id = ?", 1);
        noPlaintext("masked", rows, one, warnings(conn));
        expectEqual("SELECT id, email", rows, List.of("1," + MASKED_1, "2," + MASKED_2));
        expectEqual("SELECT email WHERE id = ?", one, List.of(MASKED_1));
    }

    static void caseCopy(Connection conn) throws Exception {
        CopyManager copy = conn.unwrap(PGConnection.class).getCopyAPI();
        conn.setAutoCommit(false); // BEGIN
        try {
            String data = (BASE + 2) + "\tcopy-a\n" + (BASE + 3) + "\tcopy-b\n";
            long n = copy.copyIn("COPY compat_items (id, name) FROM STDIN", new StringReader(data));
            expectEqual("COPY FROM rows", n, 2L);
            List<String> count = queryColumn(conn, "SELECT count(*) FROM compat_items WHERE id > ?", BASE);
            expectEqual("count after COPY FROM", count, List.of("2"));
        } finally {
            conn.rollback();
            conn.setAutoCommit(true);
        }
        StringWriter out = new StringWriter();
        copy.copyOut("COPY (SELECT id, email FROM compat_customers ORDER BY id) TO STDOUT", out);
        noPlaintext("COPY TO", out.toString(), warnings(conn));
        expectEqual("COPY TO output", out.toString(), "1\t" + MASKED_1 + "\n2\t" + MASKED_2 + "\n");
    }

    // --- runner ---------------------------------------------------------------

    static final List<Map.Entry<String, Case>> CASES = List.of(
            Map.entry("connect", Compat::caseConnect),
            Map.entry("simple", Compat::caseSimple),
            Map.entry("parameterized", Compat::caseParameterized),
            Map.entry("transaction", Compat::caseTransaction),
            Map.entry("masked", Compat::caseMasked),
            Map.entry("copy", Compat::caseCopy));

    static String oneLine(String s) {
        return String.valueOf(s).replaceAll("\\s+", " ").trim().replace(PASSWORD, "[password]");
    }

    static String describe(Exception e) {
        if (e instanceof CaseFailed) {
            return e.getMessage();
        }
        String msg = e.getMessage() != null ? e.getMessage() : e.toString();
        if (e instanceof SQLException && ((SQLException) e).getSQLState() != null) {
            msg += " (SQLSTATE " + ((SQLException) e).getSQLState() + ")";
        }
        if (e.getCause() != null && e.getCause().getMessage() != null && !msg.contains(e.getCause().getMessage())) {
            msg += ": " + e.getCause().getMessage();
        }
        return msg;
    }

    public static void main(String[] args) {
        Timer watchdog = new Timer("watchdog", true);
        int failed = 0;
        for (Map.Entry<String, Case> c : CASES) {
            String name = c.getKey();
            TimerTask timeout = new TimerTask() {
                @Override
                public void run() {
                    System.out.println("FAIL " + name + ": timed out after " + CASE_TIMEOUT_MS + " ms");
                    System.out.flush();
                    Runtime.getRuntime().halt(1);
                }
            };
            watchdog.schedule(timeout, CASE_TIMEOUT_MS);
            try (Connection conn = connect(Map.of())) {
                c.getValue().run(conn);
                System.out.println("ok " + name);
            } catch (Exception e) {
                failed++;
                System.out.println("FAIL " + name + ": " + oneLine(describe(e)));
            } finally {
                timeout.cancel();
            }
        }
        System.out.flush();
        System.exit(failed == 0 ? 0 : 1);
    }
}
