package compat

// The harness: one PostgreSQL cluster for the package (internal/pgtest), and,
// built once on first use, the schema and rows of the contract (doc.go), a
// certificate authority with the gateway's certificate, the development
// OpenID provider with a token, a recording journal, and the gateway itself,
// composed in process and serving on a loopback port.

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/internal/devidp"
	"github.com/pgwarden/pgwarden/internal/pgtest"
	"github.com/pgwarden/pgwarden/internal/scramhash"
	"github.com/pgwarden/pgwarden/internal/testcert"
	"github.com/pgwarden/pgwarden/internal/testlog"
	"github.com/pgwarden/pgwarden/mask"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
	"github.com/pgwarden/pgwarden/session/journal"
)

// pg is the cluster every test of the package goes through the gateway to.
var pg *pgtest.Cluster

// The names of the contract and of the harness.
const (
	database     = "compat"
	ownerRole    = "compat_owner" // owns the tables; never logs in
	upstreamRole = "compat_gw"    // the role the gateway logs in as
	scramUser    = "alice"        // the gateway's static SCRAM user
	tokenUser    = "token"        // the login name of token logins (ignored by the OIDC authenticator)
	tokenSubject = "carol"        // the person the access token is for
	gatewayHost  = "127.0.0.1"    // PGW_HOST; an IP SAN of the gateway's certificate
	noDeletes    = "no-deletes"   // the policy's rule refusing every DELETE
)

// The plaintext addresses of compat_customers: no client may ever see them.
var plaintextEmails = []string{"alice@example.com", "bob@example.org"}

// The masked values the clients must read instead.
var maskedEmails = []string{"***@example.com", "***@example.org"}

// The two ways of logging in through the gateway.
const (
	modeSCRAM = "scram"
	modeToken = "token"
)

var modes = []string{modeSCRAM, modeToken}

// login is how a client logs in, in one mode.
type login struct {
	mode     string
	user     string
	password string // a secret: never logged (see harness.redact)
	subject  string // the identity the gateway must give the session
}

// harness is everything the clients talk to.
type harness struct {
	host, port string
	caFile     string // PEM of the CA that signed the gateway's certificate
	dir        string // temporary files (CA, journal, scripts); removed by close

	proxy      *proxy.Proxy
	serveErr   chan error
	idp        *devidp.Provider
	journal    *journal.Journal
	journalDir string
	logs       *testlog.Buffer

	logins  map[string]login
	secrets []string // passwords and tokens, for redaction and leak checks

	nextBase atomic.Int64
}

var (
	harnessOnce sync.Once
	theHarness  *harness
	harnessErr  error
)

func TestMain(m *testing.M) {
	code := pgtest.Main(m, pgtest.Options{Database: database}, &pg)
	if theHarness != nil {
		if err := theHarness.close(); err != nil {
			fmt.Fprintf(os.Stderr, "compat: closing the harness: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// setup returns the shared harness, building it on first use; a harness
// that cannot be built fails t.
func setup(t testing.TB) *harness {
	t.Helper()
	harnessOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		theHarness, harnessErr = startHarness(ctx)
	})
	if harnessErr != nil {
		t.Fatalf("starting the harness: %v", harnessErr)
	}
	return theHarness
}

// randomSecret returns 32 random hex digits.
func randomSecret() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func startHarness(ctx context.Context) (_ *harness, err error) {
	dir, err := os.MkdirTemp("", "pgwarden-compat-")
	if err != nil {
		return nil, err
	}
	h := &harness{dir: dir, logs: &testlog.Buffer{}, serveErr: make(chan error, 1), logins: map[string]login{}}
	defer func() {
		if err != nil {
			h.close()
		}
	}()

	// 1. The schema and rows, owned by a role that is not the gateway's.
	upstreamPassword := randomSecret()
	h.secrets = append(h.secrets, upstreamPassword)
	upstreamVerifier, err := scramhash.Verifier(upstreamPassword)
	if err != nil {
		return nil, err
	}
	if err := pg.Exec(ctx, "postgres", fmt.Sprintf(`
		CREATE ROLE %[1]s NOLOGIN;
		CREATE ROLE %[2]s LOGIN PASSWORD '%[3]s';`, ownerRole, upstreamRole, upstreamVerifier)); err != nil {
		return nil, fmt.Errorf("creating roles: %w", err)
	}
	if err := pg.Exec(ctx, database, fmt.Sprintf(`
		GRANT CREATE ON SCHEMA public TO %[1]s;
		SET ROLE %[1]s;
		CREATE TABLE public.compat_items (id int PRIMARY KEY, name text);
		INSERT INTO public.compat_items VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma');
		CREATE TABLE public.compat_customers (id int PRIMARY KEY, email text);
		INSERT INTO public.compat_customers VALUES (1, 'alice@example.com'), (2, 'bob@example.org');
		-- DELETE too, so that refusals come from the gateway's policy.
		GRANT SELECT, INSERT, DELETE ON public.compat_items, public.compat_customers TO %[2]s;
		RESET ROLE;`, ownerRole, upstreamRole)); err != nil {
		return nil, fmt.Errorf("creating the schema: %w", err)
	}

	// 2. The gateway's certificate, and the CA file clients verify it with.
	ca, err := testcert.NewAuthority("pgwarden compat CA")
	if err != nil {
		return nil, err
	}
	leaf, err := ca.Issue("pgwarden compat gateway", "localhost", gatewayHost)
	if err != nil {
		return nil, err
	}
	h.caFile = filepath.Join(dir, "ca.crt")
	if err := ca.WriteCertFile(h.caFile); err != nil {
		return nil, err
	}

	// 3. The identity provider, and a token for carol.
	h.idp, err = devidp.Start(context.Background(), devidp.Config{
		TokenLifetime: time.Hour,
		Users:         []devidp.User{{Subject: tokenSubject, Name: "Carol C.", Email: "carol@example.test", Groups: []string{"compat"}}},
	})
	if err != nil {
		return nil, fmt.Errorf("starting the identity provider: %w", err)
	}
	token, err := h.idp.PersonToken(ctx, tokenSubject)
	if err != nil {
		return nil, fmt.Errorf("getting a token: %w", err)
	}
	scramPassword := randomSecret()
	h.secrets = append(h.secrets, scramPassword, token)
	h.logins[modeSCRAM] = login{mode: modeSCRAM, user: scramUser, password: scramPassword, subject: scramUser}
	h.logins[modeToken] = login{mode: modeToken, user: tokenUser, password: token, subject: tokenSubject}

	// 4. The gateway.
	scramVerifier, err := scramhash.Verifier(scramPassword)
	if err != nil {
		return nil, err
	}
	static, err := auth.NewStatic(auth.User{Name: scramUser, Verifier: scramVerifier, Groups: []string{"compat"}})
	if err != nil {
		return nil, err
	}
	oidc, err := auth.NewOIDC(auth.OIDCConfig{Issuer: h.idp.Issuer(), Audience: h.idp.Audience()})
	if err != nil {
		return nil, err
	}
	creds, err := credstore.NewStatic(credstore.StaticEntry{User: upstreamRole, Password: session.NewSecret(upstreamPassword)})
	if err != nil {
		return nil, err
	}
	h.journalDir = filepath.Join(dir, "journal")
	h.journal, err = journal.Open(h.journalDir, session.NewSecret(randomSecret()), journal.Options{})
	if err != nil {
		return nil, fmt.Errorf("opening the journal: %w", err)
	}
	h.proxy = &proxy.Proxy{
		Authenticator: auth.Chain(auth.When(func(r *auth.Request) bool { return static.Knows(r.User) }, static), oidc),
		Credentials:   creds,
		Policy: policy.FirstMatch(
			policy.Rule{Name: noDeletes, When: policy.IsKind(policy.KindDelete), Verdict: policy.Block,
				Reason: "Rows are never deleted through this gateway."},
			policy.Default("allow-the-rest", policy.Allow, ""),
		),
		Masks:    mask.Rules{{Column: "public.compat_customers.email", Masker: mask.Email(true)}},
		Recorder: h.journal,
		Upstream: proxy.Upstream{Address: pg.Addr()},
		TLS:      &tls.Config{Certificates: []tls.Certificate{leaf.Certificate}, MinVersion: tls.VersionTLS12},
		Logger:   slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(gatewayHost, "0"))
	if err != nil {
		return nil, err
	}
	_, h.port, _ = net.SplitHostPort(ln.Addr().String())
	h.host = gatewayHost
	go func() { h.serveErr <- h.proxy.Serve(ln) }()
	return h, nil
}

// close stops the gateway, closes the journal and the identity provider and
// removes the temporary files.
func (h *harness) close() error {
	var errs []string
	if h.proxy != nil {
		h.proxy.Close()
		select {
		case err := <-h.serveErr:
			if err != proxy.ErrProxyClosed {
				errs = append(errs, fmt.Sprintf("Serve returned %v, want ErrProxyClosed", err))
			}
		case <-time.After(10 * time.Second):
			errs = append(errs, "Serve did not return after Close")
		}
	}
	if h.journal != nil {
		if err := h.journal.Close(); err != nil {
			errs = append(errs, fmt.Sprintf("closing the journal: %v", err))
		}
	}
	if h.idp != nil {
		h.idp.Close()
	}
	if err := os.RemoveAll(h.dir); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// idBase returns a fresh PGW_ID_BASE: the rows a run writes never collide
// with another run's.
func (h *harness) idBase() int {
	return int(h.nextBase.Add(1000))
}

// redact replaces every secret of the harness (and a token's signature
// alone) in s, so that s can be logged.
func (h *harness) redact(s string) string {
	for _, secret := range h.secrets {
		s = strings.ReplaceAll(s, secret, "[REDACTED]")
		if parts := strings.Split(secret, "."); len(parts) == 3 && len(parts[2]) >= 16 {
			s = strings.ReplaceAll(s, parts[2], "[REDACTED]")
		}
	}
	return s
}

// leaks returns what of the secrets and the plaintext addresses b contains,
// described without quoting a secret.
func (h *harness) leaks(b []byte) []string {
	var found []string
	for i, secret := range h.secrets {
		needles := []string{secret}
		if parts := strings.Split(secret, "."); len(parts) == 3 && len(parts[2]) >= 16 {
			needles = append(needles, parts[2])
		}
		for _, n := range needles {
			if strings.Contains(string(b), n) {
				found = append(found, fmt.Sprintf("secret #%d (%d bytes)", i, len(secret)))
				break
			}
		}
	}
	for _, e := range plaintextEmails {
		if strings.Contains(string(b), e) {
			found = append(found, "the plaintext address "+e)
		}
	}
	return found
}

// checkNoPlaintext fails t if out (what a client received or printed)
// holds a plaintext address of compat_customers.
func checkNoPlaintext(t testing.TB, what, out string) {
	t.Helper()
	for _, e := range plaintextEmails {
		if strings.Contains(out, e) {
			t.Errorf("%s contains the plaintext address %s", what, e)
		}
	}
}

// libpqEnv is the environment of a libpq program (psql, pgbench) logging in
// through the gateway as l: the process's environment without any PG*
// variable, plus the connection's.
func (h *harness) libpqEnv(l login) []string {
	env := cleanEnv()
	return append(env,
		"PGHOST="+h.host,
		"PGPORT="+h.port,
		"PGDATABASE="+database,
		"PGUSER="+l.user,
		"PGPASSWORD="+l.password,
		"PGSSLMODE=verify-full",
		"PGSSLROOTCERT="+h.caFile,
		"PGAPPNAME=compat",
		"PGCONNECT_TIMEOUT=30",
	)
}

// contractEnv is the environment of doc.go for an external client program.
func (h *harness) contractEnv(l login, base int) []string {
	return append(cleanEnv(),
		"PGW_HOST="+h.host,
		"PGW_PORT="+h.port,
		"PGW_DATABASE="+database,
		"PGW_SSLROOTCERT="+h.caFile,
		"PGW_MODE="+l.mode,
		"PGW_USER="+l.user,
		"PGW_PASSWORD="+l.password,
		"PGW_ID_BASE="+strconv.Itoa(base),
	)
}

// cleanEnv is the process's environment without the variables that would
// change how a PostgreSQL client connects (libpq's PG*, and PGW_*).
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// testContext bounds one step, so that a hang fails instead of stalling the
// suite; it is not a timing assertion.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
