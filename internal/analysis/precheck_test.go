package analysis

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/policy"
)

// tooMany is in the reason for a text with too many tokens.
const tooMany = "more than"

// TestLimitsRefuse checks that texts over the limits are refused with an
// *Error before they reach the parser.
func TestLimitsRefuse(t *testing.T) {
	inList := func(size int) string {
		var b strings.Builder
		b.WriteString("SELECT * FROM t WHERE id IN (")
		for i := 0; b.Len() < size; i++ {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(i))
		}
		b.WriteString(")")
		return b.String()
	}
	for _, c := range []struct {
		name   string
		limits Limits
		sql    string
		reason string
	}{
		{"200 KB expression", Limits{}, "SELECT 1" + strings.Repeat("+1", 100000), tooMany},
		{"10,000 nested parentheses", Limits{}, "SELECT " + strings.Repeat("(", 10000) + "1" + strings.Repeat(")", 10000), "more than 256 deep"},
		{"10,000 nested brackets", Limits{}, "SELECT a" + strings.Repeat("[", 10000) + "1" + strings.Repeat("]", 10000), "more than 256 deep"},
		{"10,000 nested subqueries", Limits{}, strings.Repeat("SELECT * FROM (", 10000) + "SELECT 1" + strings.Repeat(") x", 10000), "more than 256 deep"},
		{"10 MB IN list", Limits{}, inList(10 << 20), "the gateway analyses at most 1048576"},
		{"100k-operator chain of mixed operators", Limits{}, "SELECT 1" + strings.Repeat(" * 2 - 3", 50000), tooMany},
		{"100k keyword operators", Limits{}, "SELECT " + strings.Repeat("NOT ", 100000) + "true", tooMany},
		{"AND chain", Limits{}, "SELECT * FROM t WHERE " + strings.Repeat("a AND ", 5000) + "b", tooMany},
		{"type cast chain", Limits{}, "SELECT 1" + strings.Repeat("::int", 40000), tooMany},
		{"ISNULL chain", Limits{}, "SELECT 1" + strings.Repeat(" ISNULL", 40000), tooMany},
		{"UNION chain", Limits{}, "SELECT 1" + strings.Repeat(" UNION SELECT 1", 65000), tooMany},
		{"CROSS JOIN chain", Limits{}, "SELECT * FROM a" + strings.Repeat(" CROSS JOIN a", 40000), tooMany},
		{"field selection chain", Limits{}, "SELECT (a)" + strings.Repeat(".b", 40000), tooMany},
		{"unary +- run", Limits{}, "SELECT " + strings.Repeat("-+", 500000) + "1", tooMany},
		{"operator chain behind a comment glued to an operator", Limits{}, "SELECT 1 +/* ' */ " + strings.Repeat("+1", 100000) + " -- '", tooMany},
		{"1 MiB + 1 of plain text", Limits{}, "SELECT '" + strings.Repeat("x", 1<<20-8) + "'", "is 1048577 bytes long"},
		{"1 MiB + 1 of comment", Limits{}, "SELECT 1 -- " + strings.Repeat("x", 1<<20-11), "is 1048577 bytes long"},
		{"custom MaxBytes", Limits{MaxBytes: 100}, "SELECT '" + strings.Repeat("x", 100) + "'", "at most 100"},
		{"custom MaxDepth", Limits{MaxDepth: 3}, "SELECT ((((1))))", "more than 3 deep"},
		{"custom MaxTokens", Limits{MaxTokens: 3}, "SELECT 1 + 2 - 3 * 4 / 5", "more than 3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			sts, err := New(c.limits, 1<<20).Analyze(c.sql)
			var aerr *Error
			if !errors.As(err, &aerr) {
				t.Fatalf("Analyze(%d bytes: %.60q...) = %d statements, %v; want an *analysis.Error", len(c.sql), c.sql, len(sts), err)
			}
			if !strings.Contains(aerr.Reason, c.reason) {
				t.Errorf("Analyze(%d bytes: %.60q...): reason %q does not contain %q", len(c.sql), c.sql, aerr.Reason, c.reason)
			}
			if !strings.HasPrefix(err.Error(), "cannot analyse the statement: ") {
				t.Errorf("error text %q lacks its prefix", err.Error())
			}
		})
	}
}

// TestLimitsAllow checks that large statements under the limits are
// analysed.
func TestLimitsAllow(t *testing.T) {
	values := func(rows int) string {
		var b strings.Builder
		b.WriteString("INSERT INTO accounts (id, name, balance, created) VALUES ")
		for i := range rows {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("(" + strconv.Itoa(i) + ", 'name " + strconv.Itoa(i) + "', 12.50, '2024-01-01')")
		}
		return b.String()
	}
	inList := func(n int) string {
		var b strings.Builder
		b.WriteString("SELECT * FROM t WHERE id IN (")
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(i))
		}
		b.WriteString(")")
		return b.String()
	}
	for _, c := range []struct {
		name string
		sql  string
		want want
	}{
		{"INSERT with 2,000 VALUES rows", values(2000),
			want{kind: policy.KindInsert, writes: true, written: rels(rel("accounts"))}},
		{"IN list of 100,000 integers", inList(100000),
			want{kind: policy.KindSelect, reads: rels(rel("t"))}},
		{"exactly 1 MiB", "SELECT '" + strings.Repeat("x", 1<<20-9) + "'",
			want{kind: policy.KindSelect}},
		{"parentheses 256 deep", "SELECT " + strings.Repeat("(", 256) + "1" + strings.Repeat(")", 256),
			want{kind: policy.KindSelect}},
		{"4,000 operators", "SELECT 1" + strings.Repeat("+1", 4000),
			want{kind: policy.KindSelect}},
		{"many shallow parentheses", "SELECT " + strings.Repeat("(1)+", 2000) + "1",
			want{kind: policy.KindSelect}},
		{"parentheses and operators inside a 900 KB string", "SELECT '" + strings.Repeat("((+-", 225000) + "'",
			want{kind: policy.KindSelect}},
		{"parentheses and operators inside a dollar quote", "SELECT $q$" + strings.Repeat("((+-", 50000) + "$q$",
			want{kind: policy.KindSelect}},
		{"parentheses and operators inside comments", "SELECT 1 /* " + strings.Repeat("((+-", 50000) + " */ -- " + strings.Repeat("((*", 50000) + "\n",
			want{kind: policy.KindSelect}},
	} {
		t.Run(c.name, func(t *testing.T) {
			sts, err := New(Limits{}, 0).Analyze(c.sql)
			if err != nil {
				t.Fatalf("Analyze(%d bytes: %.60q...): %v", len(c.sql), c.sql, err)
			}
			if len(sts) != 1 {
				t.Fatalf("Analyze(%d bytes) = %d statements, want 1", len(c.sql), len(sts))
			}
			for _, p := range compare(sts[0], &c.want) {
				t.Errorf("Analyze(%d bytes: %.60q...): %s", len(c.sql), c.sql, p)
			}
		})
	}
}

// TestPrecheckLexer checks that the precheck reads text the way
// PostgreSQL's lexer does: parentheses and operators in strings, quoted
// identifiers, dollar quotes and comments do not count; those in code do.
func TestPrecheckLexer(t *testing.T) {
	// At most 2 levels of parentheses and 6 keywords, names and operator
	// characters: each text that passes has many more inside its strings
	// and comments.
	tight := Limits{MaxDepth: 2, MaxTokens: 6}
	for _, c := range []struct {
		name string
		sql  string
		ok   bool
	}{
		{"code parentheses", "SELECT (((1)))", false},
		{"code brackets", "SELECT a[[[1]]]", false},
		{"code operators", "SELECT 1 + 2 - 3 * 4 / 5 % 6 ^ 7", false},
		{"keywords", "SELECT NOT a IS NOT NULL AND b", false},
		{"each character of an operator run counts", "SELECT -+-+-+-+1", false},
		{"two levels are fine", "SELECT ((1)) + (2)", true},
		{"string", "SELECT '(((+-*/ a b c d e f g'", true},
		{"string with doubled quote", "SELECT 'it''s ((( +++ a b c d e f g'", true},
		{"code after a string with doubled quote", "SELECT 'it''s' || (((1)))", false},
		{"standard string ends at the quote after a backslash", `SELECT 'a\' || (((1))) || ''`, false},
		{"E string escapes its quote", `SELECT E'\' ((( +++ a b c d e f g '`, true},
		{"lower-case e string", `SELECT e'\' ((( +++ a b c d e f g '`, true},
		{"E string with escaped backslash ends", `SELECT E'\\' || (((1)))`, false},
		{"identifier ending in e is not an E string", `SELECT some'\' || (((1))) || '`, false},
		{"unicode string", `SELECT U&'\0028((( +++ a b c d e f g'`, true},
		{"bit strings", "SELECT B'0101', X'1F'", true},
		{"quoted identifiers", `SELECT "(((+-* a b c d e f g" FROM "a""((("`, true},
		{"dollar quote", "SELECT $$ ((( +-* a b c d e f g $$", true},
		{"tagged dollar quote with $$ inside", "SELECT $t$ ((( $$ +-*/ $$ ((( a b c d e f g $t$", true},
		{"dollar quote with a non-ASCII tag", "SELECT $é$ ((( +++ a b c d e f g $é$", true},
		{"code after a dollar quote", "SELECT $a$x$a$ || (((1)))", false},
		{"parameter is not a dollar quote", "SELECT $1 (((", false},
		{"dollar inside an identifier is not a quote", "SELECT x$$ ((( $$", false},
		{"line comment", "SELECT 1 -- ((( +-*/ a b c d e f g\n", true},
		{"line comment ended by CR", "SELECT 1 -- (((\r + (((1)))", false},
		{"block comment", "SELECT 1 /* ((( +-* a b c d e f g */", true},
		{"nested block comment", "SELECT 1 /* /* ((( */ ((( +-* a b c d e f g */", true},
		{"code after a nested block comment", "SELECT 1 /* /* */ */ + (((1)))", false},
		{"block comment glued to an operator", "SELECT 1 +/* ((( ' a b c d e f g */ 2", true},
		{"line comment glued to an operator", "SELECT 1 +-- ((( ' a b c d e f g\n 2", true},
		{"code after a comment glued to an operator", "SELECT 1 +/* ' */ (((1))) -- '", false},
		{"closing parentheses in a comment glued to an operator", "SELECT ((1 +/* )) */ + ((1))))", false},
		{"unterminated string counts nothing", "SELECT '(((", true},
		{"unterminated comment counts nothing", "SELECT 1 /* (((", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := tight.precheck(c.sql)
			if c.ok && err != nil {
				t.Errorf("precheck(%q) = %v; want nothing counted", c.sql, err)
			}
			if !c.ok {
				var aerr *Error
				if !errors.As(err, &aerr) {
					t.Errorf("precheck(%q) = %v; want an *analysis.Error (over the limits)", c.sql, err)
				}
			}
		})
	}
}

// TestLimitsNoCrash analyses, each in a child process, texts that once
// crashed the process: left-deep trees that the precheck did not count
// reached libpg_query, whose protobuf output
// (protobuf_c_message_get_packed_size) recurses once per level and
// overflowed the C stack (SIGSEGV in cgo, which kills the whole gateway).
// All are well under the 1 MiB default MaxBytes.
func TestLimitsNoCrash(t *testing.T) {
	for _, c := range []struct {
		name, sql string
	}{
		{"type cast chain (200 KB)", "SELECT 1" + strings.Repeat("::int", 40000)},
		{"ISNULL chain (280 KB)", "SELECT 1" + strings.Repeat(" ISNULL", 40000)},
		{"UNION chain (975 KB)", "SELECT 1" + strings.Repeat(" UNION SELECT 1", 65000)},
		{"CROSS JOIN chain (520 KB)", "SELECT * FROM a" + strings.Repeat(" CROSS JOIN a", 40000)},
		// "+/*" was read as one operator token, so the comment was not
		// skipped, its quote started a string, and the code up to the
		// quote in the trailing line comment went uncounted.
		{"operator chain behind a comment glued to an operator (200 KB)", "SELECT 1 +/* ' */ " + strings.Repeat("+1", 100000) + " -- '"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := analyzeInChild(t, c.sql)
			if err != nil {
				t.Fatalf("Analyze of a %d-byte %s killed the process (%v); want an *analysis.Error.\nchild output:\n%s",
					len(c.sql), c.name, err, crashSummary(out))
			}
			if !strings.Contains(out, "RESULT: error: ") {
				t.Errorf("Analyze of a %d-byte %s did not fail with an *analysis.Error:\n%s", len(c.sql), c.name, crashSummary(out))
			}
		})
	}
}

const childSQLFileEnv = "PGWARDEN_ANALYSIS_CHILD_SQL_FILE"

// TestAnalyzeChildProcess is not a test: analyzeInChild runs the test
// binary with it, to analyse a text that may crash the process.
func TestAnalyzeChildProcess(t *testing.T) {
	file := os.Getenv(childSQLFileEnv)
	if file == "" {
		return
	}
	sql, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	sts, err := New(Limits{}, 0).Analyze(string(sql))
	var aerr *Error
	switch {
	case errors.As(err, &aerr):
		fmt.Printf("RESULT: error: %s\n", aerr.Reason)
	case err != nil:
		fmt.Printf("RESULT: other error %T: %v\n", err, err)
	default:
		fmt.Printf("RESULT: ok: %d statements\n", len(sts))
	}
}

// analyzeInChild analyses sql in a child process and returns its output;
// the error is the child's if it did not exit cleanly.
func analyzeInChild(t *testing.T, sql string) (string, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "sql")
	if err := os.WriteFile(file, []byte(sql), 0o600); err != nil {
		t.Fatal(err)
	}
	// A guard against a hung child, not a performance expectation.
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestAnalyzeChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childSQLFileEnv+"="+file)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// crashSummary keeps the lines of a child's output that say what
// happened: the RESULT line, or the signal and the cgo call it arrived in.
func crashSummary(out string) string {
	var keep []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "RESULT:") || strings.Contains(line, "SIGSEGV") || strings.Contains(line, "signal ") ||
			strings.Contains(line, "_Cfunc_") || strings.HasPrefix(line, "fatal error") || strings.HasPrefix(line, "panic") {
			keep = append(keep, "    "+line)
		}
		if len(keep) == 8 {
			break
		}
	}
	if len(keep) == 0 {
		if len(out) > 800 {
			out = out[:800] + "..."
		}
		return out
	}
	return strings.Join(keep, "\n")
}
