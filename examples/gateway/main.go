// Command pgwarden is the example gateway: a PostgreSQL gateway configured
// by a YAML file, built from the pgwarden library.
//
// Clients log in to the gateway as static users (SCRAM-SHA-256); the
// gateway logs in to PostgreSQL with a credential the clients never see, and
// a policy decides about every statement. Run `pgwarden demo` to try it
// against a throwaway database, and see README.md for the configuration
// file.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/internal/analysis"
	"github.com/pgwarden/pgwarden/internal/judge"
	"github.com/pgwarden/pgwarden/mask"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const usage = `pgwarden is a PostgreSQL gateway: clients log in to it, it logs in to the
database with a credential they never see, and a policy decides about every
statement.

Usage:
  pgwarden serve --config FILE    run the gateway described by FILE (YAML)
  pgwarden check --config FILE    check FILE and the files it names, without connecting
                                  to any server; print "config OK"
  pgwarden check --config FILE [--user NAME] [--groups G1,G2] [--at TIME]
                 [--search-path S1,S2] SQL...
                                  print the policy's decision about each SQL text,
                                  without a database; exit status 3 if one is refused
  pgwarden hash-password          read a password (one line) on stdin and print a
                                  SCRAM-SHA-256 verifier for auth.users[].scram
  pgwarden demo [--listen ADDR]   run a throwaway PostgreSQL with sample data behind
                                  the gateway (default 127.0.0.1:6432; port 0 picks one)
  pgwarden review [--admin URL] [--token-file F] [--json] [--stale 1h]
                                  print the access review of a running gateway (its
                                  admin API; the token from F or $PGWARDEN_ADMIN_TOKEN)
  pgwarden approvals [--admin URL] [--token-file F] [--status S] [--json]
                                  list the approval requests of a running gateway
                                  (pending ones; S: approved, denied, withdrawn,
                                  expired or all)
  pgwarden approve ID [--comment C] (--approver-user U | --approver-token-file F)
                 [--admin URL] [--token-file F] [--json]
  pgwarden deny ID [--comment C] (--approver-user U | --approver-token-file F)
                 [--admin URL] [--token-file F] [--json]
                                  decide a request as the approver: a static user (the
                                  password from $PGWARDEN_APPROVER_PASSWORD or stdin) or
                                  the identity of an OIDC token
  pgwarden sessions --config FILE [--subject S] [--since T] [--until T]
                 [--table T] [--verdict V] [--store dir|postgres] [--json]
                                  list the recorded sessions (recording section)
  pgwarden replay --config FILE [--speed X] [--store dir|postgres] ID
                                  print a recorded session as a timeline; with --speed,
                                  as it happened, X times faster (1: real time)
  pgwarden verify --config FILE [--allow-open] [--store dir|postgres] [ID...]
                                  verify the recorded sessions' ledgers; exit status 1
                                  unless every one is intact and sealed
  pgwarden help                   print this help

On SIGINT or SIGTERM, serve stops accepting connections and lets sessions
finish (at most 30s); a second signal closes them at once.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run runs the command line args (without the program name) and returns
// the exit code.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "serve":
		return serveCommand(rest, stderr)
	case "check":
		return checkCommand(rest, stdout, stderr)
	case "hash-password":
		return hashPasswordCommand(rest, stdin, stdout, stderr)
	case "demo":
		return demoCommand(rest, stdout, stderr)
	case "review":
		return reviewCommand(rest, stdout, stderr)
	case "approvals":
		return approvalsCommand(rest, stdout, stderr)
	case "approve":
		return decideCommand(cmd, true, rest, stdin, stdout, stderr)
	case "deny":
		return decideCommand(cmd, false, rest, stdin, stdout, stderr)
	case "sessions":
		return sessionsCommand(rest, stdout, stderr)
	case "replay":
		return replayCommand(rest, stdout, stderr)
	case "verify":
		return verifyCommand(rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "pgwarden: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
}

// parseFlags parses a command's flags; it returns false, having printed
// the problem, when they are wrong or when positional arguments are left.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) bool {
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pgwarden %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		fs.Usage()
		return false
	}
	return true
}

// configFlag parses the --config flag of the named command, the only flag
// serve and check take. ok is false after a usage error, already reported.
func configFlag(command string, args []string, stderr io.Writer) (file string, ok bool) {
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	f := fs.String("config", "", "configuration `file` (YAML)")
	if !parseFlags(fs, args, stderr) {
		return "", false
	}
	if *f == "" {
		fmt.Fprintf(stderr, "pgwarden %s: --config is required\n", command)
		return "", false
	}
	return *f, true
}

// exitRefused is check's exit status when a statement is refused.
const exitRefused = 3

// checkCommand loads and checks a configuration, including the files it
// names, without serving; given SQL, it prints the policy's decision about
// each text instead.
func checkCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	file := fs.String("config", "", "configuration `file` (YAML)")
	user := fs.String("user", "", "judge as this static `user` (with its groups); default: an anonymous identity")
	groups := fs.String("groups", "", "comma-separated `groups` of the identity (added to the user's)")
	at := fs.String("at", "", "judge at this `time` (RFC 3339); default: now")
	searchPath := fs.String("search-path", "public", "comma-separated `schemas` of the session's search_path")
	subject := fs.String("subject", "", "judge as this `subject` (an OIDC sub, say) instead of a static user")
	chain := fs.String("chain", "", "comma-separated `agents` acting for the identity, from the first to the one on the wire (its delegation chain)")
	fs.SetOutput(stderr)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if *file == "" {
		fmt.Fprintln(stderr, "pgwarden check: --config is required")
		return exitUsage
	}
	cfg, err := loadConfig(*file)
	var g *gateway
	if err == nil {
		// Offline: check never connects (see checkProxy).
		g, err = checkProxy(cfg, slog.New(slog.DiscardHandler))
	}
	if err != nil {
		fmt.Fprintf(stderr, "pgwarden: %v\n", err)
		return exitError
	}
	for _, w := range cfg.warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stdout, "config OK")
		return exitOK
	}
	now := time.Now()
	if *at != "" {
		if now, err = time.Parse(time.RFC3339, *at); err != nil {
			fmt.Fprintf(stderr, "pgwarden check: --at: %v\n", err)
			return exitUsage
		}
	}
	id := session.Identity{Subject: "anonymous", Issuer: auth.StaticIssuer}
	if *user != "" {
		found := false
		for _, u := range cfg.Auth.Users {
			if string(u.Name) == *user {
				id = session.Identity{Subject: *user, Issuer: auth.StaticIssuer}
				for _, g := range u.Groups {
					id.Groups = append(id.Groups, string(g))
				}
				found = true
			}
		}
		if !found {
			fmt.Fprintf(stderr, "pgwarden check: --user: no user %q in auth.users\n", *user)
			return exitUsage
		}
	}
	if *subject != "" {
		if *user != "" {
			fmt.Fprintln(stderr, "pgwarden check: --user and --subject are exclusive")
			return exitUsage
		}
		id = session.Identity{Subject: *subject}
	}
	id.Groups = append(id.Groups, splitList(*groups)...)
	for _, a := range splitList(*chain) {
		id.Chain = append(id.Chain, session.Actor{Subject: a})
	}
	o := judge.Offline{
		Policy:   g.proxy.Policy,
		Info:     &session.Info{ID: "check", Identity: id, User: id.Subject, Database: "postgres", StartedAt: now},
		Names:    judge.Names{SearchPath: splitList(*searchPath)},
		Analyzer: analysis.New(analysis.Limits{}, 0),
	}
	status := exitOK
	for _, sql := range fs.Args() {
		if fs.NArg() > 1 {
			fmt.Fprintf(stdout, "%s\n  ", sql)
		}
		d, err := o.Decide(context.Background(), sql, now)
		d = judge.Enforced(d) // what the gateway does with it
		if err != nil {
			fmt.Fprintf(stderr, "pgwarden check: the policy failed: %v\n", err)
		}
		line := fmt.Sprintf("%s (rule %q)", d.Verdict, d.Rule)
		if d.Reason != "" {
			line += ": " + d.Reason
		}
		fmt.Fprintln(stdout, line)
		if d.Verdict != policy.Allow {
			status = exitRefused
			continue
		}
		if len(g.proxy.Masks) > 0 && !printMaskPlan(stdout, g.proxy.Masks, id.Groups, sql) {
			status = exitRefused
		}
	}
	return status
}

// printMaskPlan prints how the gateway would mask sql's results for an
// identity in groups, offline (see proxy.PlanMasks); false when masking
// refuses the statement.
func printMaskPlan(w io.Writer, rules mask.Rules, groups []string, sql string) bool {
	plans, err := proxy.PlanMasks(rules, groups, sql)
	if err != nil {
		fmt.Fprintf(w, "  mask plan: %v\n", err)
		return false
	}
	ok := true
	for _, p := range plans {
		if p.Refused != nil {
			fmt.Fprintf(w, "  but masking refuses it (rule %q): %s\n", p.Refused.Rule, p.Refused.Reason)
			ok = false
			continue
		}
		var cols []string
		for _, c := range p.Columns {
			if c.Masker == "" {
				continue
			}
			how := c.Masker
			if c.Computed {
				how += ", computed"
			}
			cols = append(cols, fmt.Sprintf("%s: %s (%s)", c.Name, how, strings.Join(c.Rules, ", ")))
		}
		if len(cols) > 0 {
			fmt.Fprintf(w, "  masked: %s\n", strings.Join(cols, "; "))
		}
	}
	return ok
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// hashPasswordCommand reads one line from stdin and prints its SCRAM-SHA-256
// verifier.
func hashPasswordCommand(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hash-password", flag.ContinueOnError)
	if !parseFlags(fs, args, stderr) {
		return exitUsage
	}
	if f, ok := stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintln(stderr, "Type the password and press Enter (it is shown as you type):")
		}
	}
	password, err := readLine(stdin)
	if err != nil {
		fmt.Fprintf(stderr, "pgwarden hash-password: %v\n", err)
		return exitError
	}
	verifier, err := auth.Verifier(session.NewSecret(password))
	if err != nil {
		fmt.Fprintf(stderr, "pgwarden hash-password: %v\n", err)
		return exitError
	}
	fmt.Fprintln(stdout, verifier)
	return exitOK
}

// readLine reads one line, without its line ending; an empty line is an
// error.
func readLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading stdin: %w", err)
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New("no password on stdin")
	}
	return line, nil
}
