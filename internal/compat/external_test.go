package compat

// The external client programs under clients/ (node-postgres, psycopg 2 and
// 3, the PostgreSQL JDBC driver), run with the environment of doc.go; each
// prints one "ok <case>", "FAIL <case>: <why>" or "skip <case>: <why>" line
// per case, which become the subtests TestCompat/<name>/<mode>/<case>.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// external is one client program.
type external struct {
	name    string   // the subtest's name
	dir     string   // the working directory, relative to this package
	command string   // the runtime: a path, or a name looked up on PATH
	args    []string // its arguments (the program, relative to dir, first)
	// needs are files that must exist (relative to dir, or absolute)
	// before the program can run: the program itself, and what
	// .ci/compat-deps installs for it.
	needs []string
	// probe, when set, is a command that exits 0 when the runtime has what
	// the program imports.
	probe []string
	// skips are the cases the program may skip (it has no API for them),
	// with why the harness accepts it. Any other skip fails.
	skips map[string]string
}

// externalClients is the table of external client programs. Their
// runtimes and libraries are installed by `make compat-deps`
// (.ci/compat-deps): Debian's nodejs, a Java runtime, python3-psycopg2,
// python3-psycopg and libpostgresql-jdbc-java, and node-postgres from npm into
// clients/node/node_modules. A missing program, runtime or library fails
// the test, never skips it.
//
// To add a client: write its program for the contract in doc.go, add a row
// here, and make .ci/compat-deps install what it needs.
var externalClients = []external{
	{
		name: "node", dir: "clients/node",
		command: "node", args: []string{"compat.js"},
		needs: []string{"compat.js", "node_modules/pg", "node_modules/pg-copy-streams"},
	},
	{
		name: "psycopg2", dir: "clients/python",
		command: "/usr/bin/python3", args: []string{"compat.py", "psycopg2"},
		needs: []string{"compat.py"},
		probe: []string{"/usr/bin/python3", "-c", "import psycopg2"},
	},
	{
		name: "psycopg3", dir: "clients/python",
		command: "/usr/bin/python3", args: []string{"compat.py", "psycopg"},
		needs: []string{"compat.py"},
		probe: []string{"/usr/bin/python3", "-c", "import psycopg"},
	},
	{
		name: "jdbc", dir: "clients/java",
		command: "java", args: []string{"-cp", "/usr/share/java/postgresql.jar", "Compat.java"},
		needs: []string{"Compat.java", "/usr/share/java/postgresql.jar"},
	},
}

// caseLine is one line of a program's report.
var caseLine = regexp.MustCompile(`^(ok|FAIL|skip) ([a-z-]+)(?::\s*(.*))?$`)

// caseReport is what a program said about one case.
type caseReport struct {
	status, why string
	lines       int
}

// run runs the program for login l and turns its report into subtests.
func (e external) run(t *testing.T, h *harness, l login, base int) {
	dir, err := filepath.Abs(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	const hint = "run `make compat-deps` to install the compatibility matrix's clients"
	command, err := exec.LookPath(e.command)
	if err != nil {
		t.Fatalf("%s: the runtime %q is not installed: %v; %s", e.name, e.command, err, hint)
	}
	for _, need := range e.needs {
		p := need
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, need)
		}
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s: %s is missing: %v; %s", e.name, p, err, hint)
		}
	}
	if len(e.probe) > 0 {
		if out, err := exec.CommandContext(testContext(t), e.probe[0], e.probe[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %q fails: %v\n%s%s", e.name, strings.Join(e.probe, " "), err, out, hint)
		}
	}

	r := runProgram(t, h, h.contractEnv(l, base), dir, command, e.args...)
	defer func() {
		if t.Failed() {
			t.Logf("%s %s (PGW_ID_BASE=%d): %s", e.name, strings.Join(e.args, " "), base, r.describe(h))
		}
	}()
	if leaks := h.leaks([]byte(r.stdout + r.stderr)); len(leaks) > 0 {
		for _, leak := range leaks {
			if !strings.HasPrefix(leak, "the plaintext address") { // those fail the masked case
				t.Errorf("the program printed %s", leak)
			}
		}
	}

	reports := map[string]*caseReport{}
	known := map[string]bool{}
	for _, c := range cases {
		known[c] = true
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		m := caseLine.FindStringSubmatch(strings.TrimRight(line, "\r"))
		if m == nil {
			continue // not a report; shown with the output on failure
		}
		if !known[m[2]] {
			t.Errorf("the program reports an unknown case: %q", h.redact(line))
			continue
		}
		rep := reports[m[2]]
		if rep == nil {
			rep = &caseReport{}
			reports[m[2]] = rep
		}
		rep.lines++
		if rep.status != "FAIL" { // a FAIL line is never hidden by another
			rep.status, rep.why = m[1], m[3]
		}
	}

	failed := false
	for _, c := range cases {
		rep := reports[c]
		if rep == nil || rep.status == "FAIL" {
			failed = true
		}
		t.Run(c, func(t *testing.T) {
			if c == "masked" {
				checkNoPlaintext(t, "the program's output", r.stdout+r.stderr)
			}
			switch {
			case rep == nil:
				t.Fatalf("the program printed no line for the case %q (exit status %d)", c, r.exitCode)
			case rep.lines > 1:
				t.Errorf("the program printed %d lines for the case %q", rep.lines, c)
			}
			switch rep.status {
			case "ok":
			case "FAIL":
				t.Errorf("FAIL: %s", h.redact(rep.why))
			case "skip":
				if why, ok := e.skips[c]; ok {
					t.Skipf("skipped: %s (accepted: %s)", h.redact(rep.why), why)
				}
				t.Errorf("skipped (%s), but %s must run the case %q", h.redact(rep.why), e.name, c)
			}
		})
	}
	switch {
	case failed && r.exitCode == 0:
		t.Errorf("the program exited 0 although a case failed or was missing")
	case !failed && r.exitCode != 0:
		t.Errorf("the program exited with status %d although no case failed", r.exitCode)
	}
}
