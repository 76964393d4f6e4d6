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
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/pgwarden/pgwarden/auth"
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
  pgwarden check --config FILE    check FILE and the files it names; print "config OK"
  pgwarden hash-password          read a password (one line) on stdin and print a
                                  SCRAM-SHA-256 verifier for auth.users[].scram
  pgwarden demo [--listen ADDR]   run a throwaway PostgreSQL with sample data behind
                                  the gateway (default 127.0.0.1:6432; port 0 picks one)
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

// checkCommand loads and checks a configuration, including the files it
// names, without serving.
func checkCommand(args []string, stdout, stderr io.Writer) int {
	file, ok := configFlag("check", args, stderr)
	if !ok {
		return exitUsage
	}
	cfg, err := loadConfig(file)
	if err == nil {
		_, err = buildProxy(cfg, slog.New(slog.DiscardHandler))
	}
	if err != nil {
		fmt.Fprintf(stderr, "pgwarden: %v\n", err)
		return exitError
	}
	for _, w := range cfg.warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	fmt.Fprintln(stdout, "config OK")
	return exitOK
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
