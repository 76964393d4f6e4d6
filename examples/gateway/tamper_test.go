package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgwarden/pgwarden/session"
)

// copyDir copies the regular files of src into a new directory dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	des, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if !de.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, de.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// ledgerLines returns the lines of a session's file, without their
// newlines.
func ledgerLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// writeLedgerLines writes lines as a session's file.
func writeLedgerLines(t *testing.T, path string, lines []string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyDetectsTampering records two sessions to a directory, then,
// on a copy of it for each case, edits one byte, breaks a line, removes
// an event line, reorders two lines, truncates the tail (at a line and in
// the middle of one) and swaps the two sessions' files, and checks that
// `pgwarden verify` exits 1 naming the session and the first bad entry,
// while the untouched session still verifies.
func TestVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	f := newRecordingFixture(t, ctx)
	path := f.writeConfig(t, f.config("recording: {dir: rec, key: "+testRecordingKey+"}\n"))
	tg := startTestGatewayFile(t, path, testAdminToken)
	for i := range 2 {
		conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://carol:carol-secret@%s/app?sslmode=disable", tg.addr))
		if err != nil {
			t.Fatal(err)
		}
		for _, sql := range []string{"SELECT 1", fmt.Sprintf("INSERT INTO t VALUES (%d, 'x')", i), "SELECT count(*) FROM t", "SELECT 2"} {
			if _, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatal(err)
			}
		}
		conn.Close(ctx)
		tg.waitSessions(t, 0)
	}
	tg.stop()
	rec := filepath.Join(f.dir, "rec")
	list, err := openJournal(t, rec).Sessions(ctx, session.Filter{})
	if err != nil || len(list) != 2 {
		t.Fatalf("sessions = %+v, %v; want 2", list, err)
	}
	a, b := list[0].ID, list[1].ID
	fileA, fileB := a+".jsonl", b+".jsonl"
	// Session A's lines: session.start, credential used, then statement
	// #1 and its result from line 3 on, ..., session.end, the seal.
	n := len(ledgerLines(t, filepath.Join(rec, fileA)))
	if n < 10 {
		t.Fatalf("session %s has %d lines; want a start, a credential, 4 statements with results, an end and a seal", a, n)
	}
	for _, c := range []struct {
		name string
		// tamper changes the copy of the directory.
		tamper func(t *testing.T, dir string)
		// want are the lines verify prints about session A (and B, for a
		// swap): the pieces of each, in order.
		want [][]string
		// openOK is true when the case is a ledger cut short, which
		// --allow-open accepts.
		openOK bool
	}{
		{
			name: "one byte edited",
			tamper: func(t *testing.T, dir string) {
				lines := ledgerLines(t, filepath.Join(dir, fileA))
				if !strings.Contains(lines[2], `"sql":"SELECT 1"`) {
					t.Fatalf("line 3 is not statement #1: %s", lines[2])
				}
				lines[2] = strings.Replace(lines[2], `"sql":"SELECT 1"`, `"sql":"SELECT 7"`, 1)
				writeLedgerLines(t, filepath.Join(dir, fileA), lines)
			},
			want: [][]string{{a + "  TAMPERED: entry 3 (statement #1 at ", "): its content does not match its hash: edited"}},
		},
		{
			name: "one byte breaks a line",
			tamper: func(t *testing.T, dir string) {
				lines := ledgerLines(t, filepath.Join(dir, fileA))
				lines[4] = strings.Replace(lines[4], `"prev":"`, `"prev";"`, 1)
				writeLedgerLines(t, filepath.Join(dir, fileA), lines)
			},
			want: [][]string{{a + "  TAMPERED: entry 5: not a ledger entry"}},
		},
		{
			name: "an event line removed",
			tamper: func(t *testing.T, dir string) {
				lines := ledgerLines(t, filepath.Join(dir, fileA))
				writeLedgerLines(t, filepath.Join(dir, fileA), append(lines[:3:3], lines[4:]...))
			},
			want: [][]string{{a + "  TAMPERED: entry 4 (statement #2 at ", "has number 5: an entry is missing or out of order"}},
		},
		{
			name: "two lines reordered",
			tamper: func(t *testing.T, dir string) {
				lines := ledgerLines(t, filepath.Join(dir, fileA))
				lines[4], lines[5] = lines[5], lines[4]
				writeLedgerLines(t, filepath.Join(dir, fileA), lines)
			},
			want: [][]string{{a + "  TAMPERED: entry 5 (result of statement #2 at ", "has number 6: an entry is missing or out of order"}},
		},
		{
			name: "the tail cut at a line",
			tamper: func(t *testing.T, dir string) {
				lines := ledgerLines(t, filepath.Join(dir, fileA))
				writeLedgerLines(t, filepath.Join(dir, fileA), lines[:6])
			},
			want:   [][]string{{a + "  NOT SEALED (running or crashed): the record stops after entry 6 (result of statement #2 at ", "); its entries verify"}},
			openOK: true,
		},
		{
			name: "the tail cut at a line, then sealed by a gateway's recovery",
			tamper: func(t *testing.T, dir string) {
				lines := ledgerLines(t, filepath.Join(dir, fileA))
				writeLedgerLines(t, filepath.Join(dir, fileA), lines[:6])
				openJournal(t, dir) // as the next gateway's start does
			},
			want:   [][]string{{a + "  NOT SEALED (running or crashed): sealed at recovery; the record stops after entry 6 (result of statement #2 at ", ") without the session's end"}},
			openOK: true,
		},
		{
			name: "the tail cut in a line",
			tamper: func(t *testing.T, dir string) {
				lines := ledgerLines(t, filepath.Join(dir, fileA))
				text := strings.Join(lines[:7], "\n") + "\n" + lines[7][:len(lines[7])/2]
				if err := os.WriteFile(filepath.Join(dir, fileA), []byte(text), 0o600); err != nil {
					t.Fatal(err)
				}
			},
			want: [][]string{{a + "  TAMPERED: entry 8: torn line"}},
		},
		{
			name: "two sessions' files swapped",
			tamper: func(t *testing.T, dir string) {
				pa, pb := filepath.Join(dir, fileA), filepath.Join(dir, fileB)
				tmp := filepath.Join(dir, "swap")
				for _, mv := range [][2]string{{pa, tmp}, {pb, pa}, {tmp, pb}} {
					if err := os.Rename(mv[0], mv[1]); err != nil {
						t.Fatal(err)
					}
				}
			},
			want: [][]string{
				{a + "  TAMPERED: entry 1 (session.start at ", fmt.Sprintf("): belongs to session %q", b)},
				{b + "  TAMPERED: entry 1 (session.start at ", fmt.Sprintf("): belongs to session %q", a)},
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "rec")
			copyDir(t, rec, dir)
			c.tamper(t, dir)
			cfg := writeFile(t, f.config("recording: {dir: "+yamlQuote(dir)+", key: "+testRecordingKey+"}\n"))
			code, stdout, stderr := runCLI([]string{"verify", "--config", cfg}, "")
			if code != exitError {
				t.Errorf("verify: exit %d, want %d\nstdout:\n%sstderr:\n%s", code, exitError, stdout, stderr)
			}
			for _, w := range c.want {
				if !slices.ContainsFunc(strings.Split(stdout, "\n"), func(line string) bool { return hasInOrder(line, w) }) {
					t.Errorf("verify's output has no line with %q:\n%s", w, stdout)
				}
			}
			if len(c.want) == 1 && !strings.Contains(stdout, b+"  OK\n") {
				t.Errorf("verify's output does not show the untouched session %s OK:\n%s", b, stdout)
			}
			if !strings.HasSuffix(stdout, "2 sessions: ") && !strings.Contains(stdout, "\n2 sessions: ") {
				t.Errorf("verify's output has no summary line:\n%s", stdout)
			}
			// The untouched session verifies on its own.
			if len(c.want) == 1 {
				if code, stdout, _ := runCLI([]string{"verify", "--config", cfg, b}, ""); code != exitOK || !strings.HasPrefix(stdout, b+"  OK\n") {
					t.Errorf("verify %s: exit %d, stdout %q", b, code, stdout)
				}
			}
			code, _, _ = runCLI([]string{"verify", "--config", cfg, "--allow-open"}, "")
			if want := map[bool]int{true: exitOK, false: exitError}[c.openOK]; code != want {
				t.Errorf("verify --allow-open: exit %d, want %d", code, want)
			}
			// replay says so too.
			code, _, stderr = runCLI([]string{"replay", "--config", cfg, a}, "")
			if c.openOK {
				if code != exitOK || !strings.Contains(stderr, "note: ") {
					t.Errorf("replay: exit %d, stderr %q; want 0 and a note", code, stderr)
				}
			} else if code != exitError || !strings.Contains(stderr, "WARNING: the record does not verify") {
				t.Errorf("replay: exit %d, stderr %q; want 1 and a warning", code, stderr)
			}
		})
	}
}

// hasInOrder reports whether s contains pieces in order.
func hasInOrder(s string, pieces []string) bool {
	for _, p := range pieces {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return true
}
