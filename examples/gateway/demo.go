package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/internal/devidp"
	"github.com/pgwarden/pgwarden/internal/pgtest"
	"github.com/pgwarden/pgwarden/internal/testcert"
	"github.com/pgwarden/pgwarden/session"
)

// Names used by the demo.
const (
	demoDatabase   = "demo"
	demoUser       = "alice"    // the gateway user the person logs in as
	demoGroup      = "analysts" // alice's group, which selects the credential
	demoConfigFile = "pgwarden.yaml"
	// demoTokenUser is the user name printed for token logins: with a
	// token the identity comes from the token, and the name is a label
	// (it must not be a static user's, whose logins use SCRAM).
	demoTokenUser = "token"
)

// demoAgents is the nested-agent chain the demo's identity provider
// delegates alice's access through.
var demoAgents = []string{"ci-job", "agent", "sub-agent"}

// demoCommand runs a throwaway PostgreSQL with sample data behind the
// gateway until SIGINT or SIGTERM, then removes everything it created.
func demoCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	listen := fs.String("listen", defaultListen, "`address` to listen on; port 0 picks a free port")
	if !parseFlags(fs, args, stderr) {
		return exitUsage
	}
	if err := checkHostPort(*listen, true); err != nil {
		fmt.Fprintf(stderr, "pgwarden demo: --listen: %v\n", err)
		return exitUsage
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := runDemo(*listen, sigs, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "pgwarden demo: %v\n", err)
		return exitError
	}
	return exitOK
}

// demoEnv is a running demo: the database, the files and the gateway.
type demoEnv struct {
	dir           string
	configFile    string
	caFile        string
	cluster       *pgtest.Cluster
	idp           *devidp.Provider // the development identity provider
	personToken   string           // files holding alice's token and her sub-agent's
	agentToken    string
	version       string // PostgreSQL's version, as "15.8"
	alicePassword string // printed for the person to type; never logged
	gw            *gateway
	ln            net.Listener
	logger        *slog.Logger
}

// runDemo sets the demo up, prints how to connect, serves until a signal
// arrives on sigs and removes everything. A signal during set-up stops it
// and cleans up too; that is not an error.
func runDemo(listen string, sigs <-chan os.Signal, stdout, stderr io.Writer) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stopWatching, watched := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-sigs:
			cancel()
		case <-stopWatching:
		}
	}()
	env, err := setUpDemo(ctx, listen, stderr)
	close(stopWatching)
	<-watched
	if env != nil {
		defer func() {
			if err := env.cleanUp(); err != nil {
				fmt.Fprintf(stderr, "pgwarden demo: cleaning up: %v\n", err)
			}
		}()
	}
	if ctx.Err() != nil {
		fmt.Fprintln(stderr, "pgwarden demo: interrupted")
		return nil
	}
	if err != nil {
		return err
	}
	env.printBanner(stdout)
	return serveUntilSignal(env.gw, env.ln, nil, sigs, env.logger)
}

// setUpDemo creates the demo: a temporary directory, a cluster with sample
// data, certificates, a configuration file, and the gateway built from that
// file by the same code as `pgwarden serve`. On error it removes what it
// created and returns a nil demoEnv.
func setUpDemo(ctx context.Context, listen string, stderr io.Writer) (env *demoEnv, err error) {
	dir, err := os.MkdirTemp("", "pgwarden-demo-")
	if err != nil {
		return nil, err
	}
	env = &demoEnv{
		dir:        dir,
		configFile: filepath.Join(dir, demoConfigFile),
		caFile:     filepath.Join(dir, "ca.crt"),
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, env.cleanUp())
			env = nil
		}
	}()

	fmt.Fprintln(stderr, "pgwarden demo: starting PostgreSQL...")
	env.cluster, err = pgtest.Start(ctx, pgtest.Options{Database: demoDatabase})
	if err != nil {
		return env, fmt.Errorf("starting PostgreSQL: %w", err)
	}
	appPassword, err := randomPassword()
	if err != nil {
		return env, err
	}
	env.version, err = loadSampleData(ctx, env.cluster, session.NewSecret(appPassword))
	if err != nil {
		return env, err
	}
	if err := writeDemoCertificates(dir); err != nil {
		return env, err
	}
	if env.alicePassword, err = randomPassword(); err != nil {
		return env, err
	}
	if err := env.startIdentityProvider(ctx); err != nil {
		return env, err
	}
	if err := env.writeConfig(listen, appPassword); err != nil {
		return env, err
	}

	cfg, err := loadConfig(env.configFile)
	if err != nil {
		return env, err
	}
	env.logger = newLogger(cfg, stderr)
	for _, w := range cfg.warnings {
		env.logger.Warn("config: " + w)
	}
	if env.gw, err = buildProxy(ctx, cfg, env.logger); err != nil {
		return env, err
	}
	if env.ln, err = net.Listen("tcp", string(cfg.Listen)); err != nil {
		return env, err
	}
	return env, nil
}

// writeDemoCertificates creates a throwaway CA and a server certificate
// for localhost, 127.0.0.1 and ::1, and writes ca.crt, server.crt and
// server.key into dir.
func writeDemoCertificates(dir string) error {
	ca, err := testcert.NewAuthority("pgwarden demo CA")
	if err != nil {
		return err
	}
	if err := ca.WriteCertFile(filepath.Join(dir, "ca.crt")); err != nil {
		return err
	}
	leaf, err := ca.Issue("localhost", "localhost", "127.0.0.1", "::1")
	if err != nil {
		return err
	}
	return leaf.WriteFiles(filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key"))
}

// writeConfig writes the demo's configuration file (mode 0600: it holds
// the database credential). alice is given as a SCRAM verifier, as a real
// deployment should; the certificate paths are relative to the file.
func (env *demoEnv) writeConfig(listen, appPassword string) error {
	verifier, err := auth.Verifier(session.NewSecret(env.alicePassword))
	if err != nil {
		return err
	}
	recordingKey, err := randomPassword() // 144 bits; the file store wants 32+ characters
	if err != nil {
		return err
	}
	text := fmt.Sprintf(`# Written by "pgwarden demo"; removed when the demo stops.
listen: %s
tls:
  cert: server.crt
  key: server.key
upstream:
  address: %s
  tls: disable            # the throwaway server is on loopback
auth:
  users:
    - name: %s
      scram: %s
      groups: [%s]
  oidc:                   # the demo's development identity provider
    issuer: %s
    audience: %s
credentials:
  static:
    - user: demo_app
      password: %s
      groups: [%s]
policy:
  default: allow
  rules:
    - name: no-unbounded-writes
      all_rows: true
      reason: UPDATE and DELETE need a WHERE clause here.
    - name: no-schema-changes
      kinds: [ddl, dcl]
      reason: Schema and privilege changes go through migrations, not the gateway.
    - name: dangerous-functions
      functions: [dangerous]
      reason: File, program, large-object and administration functions are off limits.
    - name: deep-agents-only-read
      min_chain_depth: 3
      writes: true
      reason: Agents three or more hops away from a person may only read.
  masks:                  # try: select name, email, ssn from users;
    - column: public.users.email
      method: email
      keep_domain: true
    - column: public.users.ssn
      method: partial
      keep_last: 4
recording:               # every session, replayable: pgwarden sessions / replay --config this file
  dir: recordings
  key: %s
log:
  level: info
  format: text
`, yamlQuote(listen), yamlQuote(env.cluster.Addr()), demoUser, yamlQuote(verifier), demoGroup,
		yamlQuote(env.idp.Issuer()), yamlQuote(env.idp.Audience()), yamlQuote(appPassword), demoGroup,
		yamlQuote(recordingKey+recordingKey))
	return os.WriteFile(env.configFile, []byte(text), 0o600)
}

// printBanner tells the person how to connect. Printing alice's password
// is the point here: it is a throwaway, and the terminal is the person's.
func (env *demoEnv) printBanner(w io.Writer) {
	host, port := "127.0.0.1", "0"
	if addr, ok := env.ln.Addr().(*net.TCPAddr); ok {
		port = strconv.Itoa(addr.Port)
		if !addr.IP.IsUnspecified() {
			host = addr.IP.String()
		}
	}
	conninfo := fmt.Sprintf("host=%s port=%s dbname=%s user=%s sslmode=verify-full sslrootcert=%s",
		host, port, demoDatabase, demoUser, conninfoValue(env.caFile))
	fmt.Fprintf(w, "pgwarden demo is running (PostgreSQL %s behind pgwarden on %s).\n",
		env.version, net.JoinHostPort(host, port))
	fmt.Fprintln(w, "Connect with:")
	fmt.Fprintf(w, "  PGPASSWORD='%s' psql \"%s\"\n", env.alicePassword, shellDoubleQuoted(conninfo))
	tokenInfo := strings.Replace(conninfo, " user="+demoUser+" ", " user="+demoTokenUser+" ", 1)
	fmt.Fprintf(w, "Or with OIDC tokens minted by the demo's development identity provider at %s\n", env.idp.Issuer())
	fmt.Fprintln(w, "(a development convenience, never for production; they expire in an hour). As alice:")
	fmt.Fprintf(w, "  PGPASSWORD=\"$(cat %s)\" psql \"%s\"\n", env.personToken, shellDoubleQuoted(tokenInfo))
	fmt.Fprintf(w, "As alice's nested agent, alice -> %s (the policy lets it only read):\n", strings.Join(demoAgents, " -> "))
	fmt.Fprintf(w, "  PGPASSWORD=\"$(cat %s)\" psql \"%s\"\n", env.agentToken, shellDoubleQuoted(tokenInfo))
	fmt.Fprintln(w, "Try: select name, email, ssn from users;  (email and ssn come back masked: policy.masks in the config)")
	fmt.Fprintf(w, "Config: %s\n", env.configFile)
	fmt.Fprintln(w, "Press Ctrl-C to stop; the database and all demo files are removed.")
}

// cleanUp closes the listener (if the gateway never served), stops the
// cluster and removes the demo directory. The gateway must already be shut
// down.
func (env *demoEnv) cleanUp() error {
	var errs []error
	if env.ln != nil {
		if err := env.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if env.idp != nil {
		env.idp.Close()
	}
	if env.cluster != nil {
		errs = append(errs, env.cluster.Stop())
	}
	errs = append(errs, os.RemoveAll(env.dir))
	return errors.Join(errs...)
}

// randomPassword returns 24 URL-safe random characters (144 bits): safe in
// shell single quotes, SQL literals and YAML.
func randomPassword() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// yamlQuote returns s as a double-quoted YAML scalar that loadConfig reads
// back as s: $ is doubled, since the loader expands ${VAR}, and Go's string
// escapes are a subset of YAML's for valid UTF-8.
func yamlQuote(s string) string {
	return strconv.Quote(strings.ReplaceAll(s, "$", "$$"))
}

// conninfoValue quotes a libpq connection string value when it needs it.
func conninfoValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " '\\\t\n") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// shellDoubleQuoted escapes s for use inside double quotes in a POSIX
// shell.
func shellDoubleQuoted(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, `$`, `\$`, "`", "\\`").Replace(s)
}

// startIdentityProvider starts the development OpenID Provider on loopback
// with alice and her agents, and writes two tokens into the demo
// directory (mode 0600): alice's own, and the one her sub-agent holds after
// the delegation chain alice -> ci-job -> agent -> sub-agent (RFC 8693
// token exchange at each hop).
func (env *demoEnv) startIdentityProvider(ctx context.Context) error {
	cfg := devidp.Config{
		Users: []devidp.User{{Subject: demoUser, Name: "Alice (demo)", Email: "alice@demo.invalid", Groups: []string{demoGroup}}},
	}
	for _, a := range demoAgents {
		cfg.Clients = append(cfg.Clients, devidp.Client{ID: a, Name: a})
	}
	idp, err := devidp.Start(context.WithoutCancel(ctx), cfg)
	if err != nil {
		return fmt.Errorf("starting the development identity provider: %w", err)
	}
	env.idp = idp
	tokens, err := idp.Chain(ctx, demoUser, demoAgents...)
	if err != nil {
		return fmt.Errorf("minting the demo tokens: %w", err)
	}
	env.personToken = filepath.Join(env.dir, "alice.jwt")
	env.agentToken = filepath.Join(env.dir, "sub-agent.jwt")
	if err := os.WriteFile(env.personToken, []byte(tokens[0]), 0o600); err != nil {
		return err
	}
	return os.WriteFile(env.agentToken, []byte(tokens[len(tokens)-1]), 0o600)
}
