package auth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/internal/devidp"
	"github.com/pgwarden/pgwarden/session"
)

// chainConv is a client that can send a password, run SCRAM-SHA-256 with
// a real SCRAM client, or send its password as an OAUTHBEARER token.
type chainConv struct {
	password      string
	passwordErr   error
	scramPassword string // "" means the client refuses SCRAM

	asked      int
	saslStarts [][]string
	scram      *scram.ClientConversation
}

func (c *chainConv) CleartextPassword(context.Context) (session.Secret, error) {
	c.asked++
	if c.passwordErr != nil {
		return session.Secret{}, c.passwordErr
	}
	return session.NewSecret(c.password), nil
}

func (c *chainConv) SASLStart(_ context.Context, mechs []string) (string, []byte, error) {
	c.saslStarts = append(c.saslStarts, slices.Clone(mechs))
	switch {
	case slices.Contains(mechs, "OAUTHBEARER"):
		return "OAUTHBEARER", []byte("n,,\x01auth=Bearer " + c.password + "\x01\x01"), nil
	case slices.Contains(mechs, "SCRAM-SHA-256") && c.scramPassword != "":
		cl, err := scram.SHA256.NewClient("", c.scramPassword, "")
		if err != nil {
			return "", nil, err
		}
		c.scram = cl.NewConversation()
		first, err := c.scram.Step("")
		return "SCRAM-SHA-256", []byte(first), err
	}
	return "", nil, errors.New("chainConv: no mechanism in common")
}

func (c *chainConv) SASLContinue(_ context.Context, challenge []byte) ([]byte, error) {
	if c.scram == nil {
		return nil, errors.New("chainConv: no SASL exchange")
	}
	resp, err := c.scram.Step(string(challenge))
	return []byte(resp), err
}

func (c *chainConv) SASLFinal(_ context.Context, data []byte) error {
	if c.scram == nil {
		return errors.New("chainConv: no SASL exchange")
	}
	_, err := c.scram.Step(string(data))
	return err
}

func (c *chainConv) TLSServerEndPoint() []byte { return nil }

// memberSpy is a Chain member standing for another token authenticator
// (SAML): it asks for the password and accepts "saml:<subject>".
type memberSpy struct{ calls int }

func (m *memberSpy) Authenticate(ctx context.Context, req *auth.Request) (session.Identity, error) {
	m.calls++
	pw, err := req.Client.CleartextPassword(ctx)
	if err != nil {
		return session.Identity{}, err
	}
	sub, ok := strings.CutPrefix(pw.Reveal(), "saml:")
	if !ok {
		return session.Identity{}, fmt.Errorf("%w: not a SAML assertion", auth.ErrNotApplicable)
	}
	return session.Identity{Subject: sub, Issuer: "saml-idp", Method: "saml"}, nil
}

type chainFixture struct {
	idp    *devidp.Provider
	cert   *auth.ClientCert
	static *auth.Static
	oidc   *auth.OIDC
	spy    *memberSpy
}

func newChainFixture(t *testing.T) *chainFixture {
	t.Helper()
	f := &chainFixture{idp: oidcIdP(t), spy: &memberSpy{}}
	var err error
	if f.cert, err = auth.NewClientCert(auth.ClientCertConfig{}); err != nil {
		t.Fatal(err)
	}
	if f.static, err = auth.NewStatic(auth.User{Name: "admin", Password: session.NewSecret("admin-pw"), Groups: []string{"ops"}}); err != nil {
		t.Fatal(err)
	}
	f.oidc = newOIDCFor(t, f.idp, func(c *auth.OIDCConfig) {
		c.Introspection = &auth.Introspection{ClientID: oidcIntrospector, ClientSecret: session.NewSecret(oidcIntrospectorPW), Interval: 45 * time.Second}
	})
	return f
}

func (f *chainFixture) staticWhenKnown() auth.Authenticator {
	return auth.When(func(r *auth.Request) bool { return f.static.Knows(r.User) }, f.static)
}

func chainRun(t *testing.T, a auth.Authenticator, user string, conv *chainConv, tlsState *tls.ConnectionState) (session.Identity, *auth.Request, error) {
	t.Helper()
	req := &auth.Request{User: user, Database: "app", TLS: tlsState, Client: conv}
	id, err := a.Authenticate(t.Context(), req)
	return id, req, err
}

func TestChainTokenPasswordAskedOnce(t *testing.T) {
	f := newChainFixture(t)
	tok := mustTok(t)(f.idp.ClientToken(t.Context(), "ci-job"))

	// The SAML-like member asks first and passes; OIDC gets the same
	// password without a second prompt.
	a := auth.Chain(f.cert, f.staticWhenKnown(), f.spy, f.oidc)
	conv := &chainConv{password: tok}
	id, req, err := chainRun(t, a, "ci", conv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "ci-job" || id.Method != "oidc" {
		t.Errorf("identity = %+v", id)
	}
	if conv.asked != 1 || f.spy.calls != 1 || len(conv.saslStarts) != 0 {
		t.Errorf("password asked %d times, spy called %d times, SASL started %d times; want 1, 1, 0", conv.asked, f.spy.calls, len(conv.saslStarts))
	}
	// The introspection recheck OIDC registered reaches the proxy's request.
	if rc := req.Rechecks(); len(rc) != 1 || rc[0].Interval != 45*time.Second {
		t.Fatalf("rechecks on the original request = %+v", rc)
	}
	if err := req.Rechecks()[0].Check(t.Context()); err != nil {
		t.Errorf("recheck: %v", err)
	}
	f.idp.Revoke(tok)
	if err := req.Rechecks()[0].Check(t.Context()); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("recheck after revocation: %v", err)
	}

	// The other way round: OIDC says the password is not a token.
	f.spy.calls = 0
	a = auth.Chain(f.cert, f.staticWhenKnown(), f.oidc, f.spy)
	conv = &chainConv{password: "saml:bob"}
	id, req, err = chainRun(t, a, "bob", conv, nil)
	if err != nil || id.Subject != "bob" || id.Method != "saml" {
		t.Fatalf("%+v %v", id, err)
	}
	if conv.asked != 1 || f.spy.calls != 1 {
		t.Errorf("password asked %d times, spy called %d times; want 1 and 1", conv.asked, f.spy.calls)
	}
	if len(req.Rechecks()) != 0 {
		t.Errorf("rechecks for a SAML login: %d", len(req.Rechecks()))
	}
}

func TestChainRechecksKeepEarlierOnes(t *testing.T) {
	f := newChainFixture(t)
	tok := mustTok(t)(f.idp.ClientToken(t.Context(), "ci-job"))
	req := &auth.Request{User: "ci", Database: "app", Client: &chainConv{password: tok}}
	req.RecheckEvery(time.Hour, func(context.Context) error { return nil })
	if _, err := auth.Chain(f.spy, f.oidc).Authenticate(t.Context(), req); err != nil {
		t.Fatal(err)
	}
	rc := req.Rechecks()
	if len(rc) != 2 || rc[0].Interval != time.Hour || rc[1].Interval != 45*time.Second {
		t.Errorf("rechecks = %+v, want the earlier one and OIDC's", rc)
	}
}

func TestChainNoMemberApplies(t *testing.T) {
	f := newChainFixture(t)
	a := auth.Chain(f.cert, f.staticWhenKnown(), f.oidc, f.spy)
	conv := &chainConv{password: "hunter2"}
	_, req, err := chainRun(t, a, "mallory", conv, nil)
	if !errors.Is(err, auth.ErrInvalidCredentials) || errors.Is(err, auth.ErrNotApplicable) {
		t.Errorf("err = %v, want ErrInvalidCredentials only", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error quotes the password: %v", err)
	}
	if conv.asked != 1 || len(conv.saslStarts) != 0 || len(req.Rechecks()) != 0 {
		t.Errorf("asked %d, SASL %d, rechecks %d", conv.asked, len(conv.saslStarts), len(req.Rechecks()))
	}

	_, err = auth.Chain().Authenticate(t.Context(), &auth.Request{User: "u", Database: "d", Client: &chainConv{}})
	if !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Errorf("empty chain: err = %v", err)
	}
}

func TestChainClientCertificateFirst(t *testing.T) {
	f := newChainFixture(t)
	a := auth.Chain(f.cert, f.staticWhenKnown(), f.oidc, f.spy)
	leaf := &x509.Certificate{Subject: pkix.Name{CommonName: "billing-svc"}, NotAfter: time.Now().Add(time.Hour)}
	st := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf}}}
	conv := &chainConv{password: "unused"}
	id, _, err := chainRun(t, a, "admin", conv, st)
	if err != nil || id.Subject != "billing-svc" || id.Method != "client-cert" {
		t.Fatalf("%+v %v", id, err)
	}
	if conv.asked != 0 || len(conv.saslStarts) != 0 || f.spy.calls != 0 {
		t.Errorf("a certificate client was asked for more (password %d, SASL %d, spy %d)", conv.asked, len(conv.saslStarts), f.spy.calls)
	}
	// A certificate the TLS layer did not verify is not enough.
	st = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
	conv = &chainConv{password: "saml:carol"}
	if id, _, err := chainRun(t, a, "carol", conv, st); err != nil || id.Subject != "carol" {
		t.Errorf("unverified certificate: %+v %v", id, err)
	}
}

func TestChainStaticUsersRunSCRAM(t *testing.T) {
	f := newChainFixture(t)
	a := auth.Chain(f.cert, f.staticWhenKnown(), f.oidc, f.spy)

	conv := &chainConv{scramPassword: "admin-pw"}
	id, _, err := chainRun(t, a, "admin", conv, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "admin" || id.Issuer != auth.StaticIssuer || id.Method != "scram-sha-256" || !slices.Equal(id.Groups, []string{"ops"}) {
		t.Errorf("identity = %+v", id)
	}
	if len(conv.saslStarts) != 1 || !slices.Equal(conv.saslStarts[0], []string{"SCRAM-SHA-256"}) || conv.asked != 0 {
		t.Errorf("SASL offers %q, password asked %d times", conv.saslStarts, conv.asked)
	}

	// A wrong SCRAM password ends the chain: the token members are not
	// tried (the client cannot fall back to a password).
	conv = &chainConv{scramPassword: "wrong", password: "saml:admin"}
	_, _, err = chainRun(t, a, "admin", conv, nil)
	if !errors.Is(err, auth.ErrInvalidCredentials) || conv.asked != 0 || f.spy.calls != 0 {
		t.Errorf("wrong SCRAM password: err %v, password asked %d, spy %d", err, conv.asked, f.spy.calls)
	}

	// A user the static list does not know skips SCRAM.
	tok := mustTok(t)(f.idp.ClientToken(t.Context(), "ci-job"))
	conv = &chainConv{password: tok, scramPassword: "admin-pw"}
	id, _, err = chainRun(t, a, "ci", conv, nil)
	if err != nil || id.Method != "oidc" {
		t.Fatalf("%+v %v", id, err)
	}
	if len(conv.saslStarts) != 0 || conv.asked != 1 {
		t.Errorf("unknown user: SASL offers %q, password asked %d times", conv.saslStarts, conv.asked)
	}
}

// TestChainSASLAfterPassword: once the client sent a password, a member
// that wants SASL is passed over (the protocol has one exchange per
// connection); the SASL exchange never starts on the wire.
func TestChainSASLAfterPassword(t *testing.T) {
	f := newChainFixture(t)
	a := auth.Chain(f.spy, f.staticWhenKnown(), f.oidc)
	tok := mustTok(t)(f.idp.ClientToken(t.Context(), "ci-job"))
	conv := &chainConv{password: tok, scramPassword: "admin-pw"}
	id, _, err := chainRun(t, a, "admin", conv, nil)
	if err != nil || id.Subject != "ci-job" {
		t.Fatalf("%+v %v", id, err)
	}
	if len(conv.saslStarts) != 0 || conv.asked != 1 {
		t.Errorf("SASL offers %q, password asked %d times", conv.saslStarts, conv.asked)
	}
}

// TestChainOAuthBearerMember: a client that asked for OAUTHBEARER gets it
// from the OIDC member when no earlier member asked for a password.
func TestChainOAuthBearerMember(t *testing.T) {
	f := newChainFixture(t)
	tok := mustTok(t)(f.idp.ClientToken(t.Context(), "ci-job"))
	a := auth.Chain(f.cert, f.staticWhenKnown(), f.oidc, f.spy)
	conv := &chainConv{password: tok}
	req := &auth.Request{User: "ci", Database: "app", Method: auth.MethodOAuthBearer, Client: conv}
	id, err := a.Authenticate(t.Context(), req)
	if err != nil || id.Method != "oauthbearer" || id.Subject != "ci-job" {
		t.Fatalf("%+v %v", id, err)
	}
	if conv.asked != 0 || len(conv.saslStarts) != 1 || len(req.Rechecks()) != 1 {
		t.Errorf("password asked %d, SASL %q, rechecks %d", conv.asked, conv.saslStarts, len(req.Rechecks()))
	}
}

func TestChainStopsAtARealError(t *testing.T) {
	f := newChainFixture(t)

	// A token that is refused is not passed to the next member.
	now := time.Now()
	c := f.idp.Claims("ci-job")
	c["exp"], c["iat"], c["nbf"] = now.Add(-time.Hour).Unix(), now.Add(-2*time.Hour).Unix(), now.Add(-2*time.Hour).Unix()
	expired := mustTok(t)(f.idp.Sign(c))
	conv := &chainConv{password: expired}
	_, _, err := chainRun(t, auth.Chain(f.oidc, f.spy), "ci", conv, nil)
	if !errors.Is(err, auth.ErrInvalidCredentials) || f.spy.calls != 0 {
		t.Errorf("expired token: err %v, next member called %d times", err, f.spy.calls)
	}

	// The conversation's own errors end the chain as they are.
	conv = &chainConv{passwordErr: auth.ErrCleartextRefused}
	_, _, err = chainRun(t, auth.Chain(f.spy, f.oidc), "ci", conv, nil)
	if !errors.Is(err, auth.ErrCleartextRefused) || conv.asked != 1 {
		t.Errorf("cleartext refused: err %v, asked %d", err, conv.asked)
	}

	// A member that started SASL and then gives up leaves the client in a
	// SASL exchange nobody else can continue: the chain fails.
	quitter := auth.Func(func(ctx context.Context, req *auth.Request) (session.Identity, error) {
		if _, _, err := req.Client.SASLStart(ctx, []string{"SCRAM-SHA-256"}); err != nil {
			return session.Identity{}, err
		}
		return session.Identity{}, auth.ErrNotApplicable
	})
	f.spy.calls = 0
	conv = &chainConv{scramPassword: "x", password: "saml:dave"}
	_, _, err = chainRun(t, auth.Chain(quitter, f.spy), "dave", conv, nil)
	if !errors.Is(err, auth.ErrInvalidCredentials) || errors.Is(err, auth.ErrNotApplicable) || f.spy.calls != 0 || conv.asked != 0 {
		t.Errorf("after SASL: err %v, next member called %d times, password asked %d", err, f.spy.calls, conv.asked)
	}
}

func TestWhen(t *testing.T) {
	called := 0
	inner := auth.Func(func(context.Context, *auth.Request) (session.Identity, error) {
		called++
		return session.Identity{Subject: "x"}, nil
	})
	w := auth.When(func(r *auth.Request) bool { return r.User == "x" }, inner)
	conv := &chainConv{}
	if _, err := w.Authenticate(t.Context(), &auth.Request{User: "y", Client: conv}); !errors.Is(err, auth.ErrNotApplicable) {
		t.Errorf("condition false: err = %v", err)
	}
	if called != 0 || conv.asked != 0 || len(conv.saslStarts) != 0 {
		t.Errorf("condition false talked to someone")
	}
	if id, err := w.Authenticate(t.Context(), &auth.Request{User: "x", Client: conv}); err != nil || id.Subject != "x" || called != 1 {
		t.Errorf("condition true: %+v %v", id, err)
	}
}
