package auth_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/xdg-go/scram"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/session"
)

// scramClient plays a PostgreSQL client's side of the Conversation with a
// real SCRAM client implementation.
type scramClient struct {
	conv      *scram.ClientConversation
	binding   []byte // the server's tls-server-end-point data, or nil
	usePlus   bool
	offered   []string
	serverMsg string
	challenge string
}

func newClient(t *testing.T, password string, binding []byte, usePlus bool) *scramClient {
	t.Helper()
	c, err := scram.SHA256.NewClient("", password, "")
	if err != nil {
		t.Fatal(err)
	}
	sc := &scramClient{binding: binding, usePlus: usePlus}
	switch {
	case usePlus:
		sc.conv = c.NewConversationWithChannelBinding(scram.ChannelBinding{Type: scram.ChannelBindingTLSServerEndpoint, Data: binding})
	default:
		sc.conv = c.NewConversation()
	}
	return sc
}

func (c *scramClient) CleartextPassword(context.Context) (session.Secret, error) {
	return session.Secret{}, errors.New("not asked for")
}

func (c *scramClient) SASLStart(_ context.Context, mechs []string) (string, []byte, error) {
	c.offered = mechs
	first, err := c.conv.Step("")
	if err != nil {
		return "", nil, err
	}
	mech := "SCRAM-SHA-256"
	if c.usePlus {
		mech = "SCRAM-SHA-256-PLUS"
	}
	return mech, []byte(first), nil
}

func (c *scramClient) SASLContinue(_ context.Context, challenge []byte) ([]byte, error) {
	c.challenge = string(challenge)
	final, err := c.conv.Step(string(challenge))
	return []byte(final), err
}

func (c *scramClient) SASLFinal(_ context.Context, data []byte) error {
	c.serverMsg = string(data)
	_, err := c.conv.Step(string(data)) // verifies the server's signature
	return err
}

func (c *scramClient) TLSServerEndPoint() []byte { return c.binding }

func authenticate(t *testing.T, a auth.Authenticator, user string, c *scramClient) (session.Identity, error) {
	t.Helper()
	return a.Authenticate(context.Background(), &auth.Request{User: user, Database: "app", Client: c})
}

func TestStaticSCRAM(t *testing.T) {
	a, err := auth.NewStatic(auth.User{Name: "alice", Password: session.NewSecret("correct horse"), Groups: []string{"analysts"}})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, "correct horse", nil, false)
	id, err := authenticate(t, a, "alice", c)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "alice" || id.Issuer != auth.StaticIssuer || !slices.Equal(id.Groups, []string{"analysts"}) || id.Method != "scram-sha-256" {
		t.Fatalf("identity %+v", id)
	}
	if !c.conv.Valid() {
		t.Fatal("the client did not verify the server's signature")
	}
	if !slices.Equal(c.offered, []string{"SCRAM-SHA-256"}) {
		t.Fatalf("offered %v without TLS", c.offered)
	}
	if _, err := authenticate(t, a, "alice", newClient(t, "wrong", nil, false)); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestStaticUnknownUsersLookLikeKnownOnes(t *testing.T) {
	a, _ := auth.NewStatic(auth.User{Name: "alice", Password: session.NewSecret("pw")})
	saltOf := func(user string) string {
		c := newClient(t, "guess", nil, false)
		if _, err := authenticate(t, a, user, c); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("%s: %v", user, err)
		}
		for _, field := range strings.Split(c.challenge, ",") {
			if s, ok := strings.CutPrefix(field, "s="); ok {
				return s
			}
		}
		t.Fatalf("no salt in %q", c.challenge)
		return ""
	}
	known, unknown := saltOf("alice"), saltOf("mallory")
	if unknown != saltOf("mallory") {
		t.Fatal("an unknown user's salt changes between attempts, which tells it apart")
	}
	if len(unknown) != len(known) || unknown == saltOf("trent") {
		t.Fatalf("fake salts %q must look like real ones (%q) and differ per name", unknown, known)
	}
}

func TestStaticChannelBinding(t *testing.T) {
	a, _ := auth.NewStatic(auth.User{Name: "alice", Password: session.NewSecret("pw")})
	binding := []byte("hash of the gateway's certificate")
	c := newClient(t, "pw", binding, true)
	id, err := authenticate(t, a, "alice", c)
	if err != nil || id.Method != "scram-sha-256-plus" {
		t.Fatalf("%+v, %v", id, err)
	}
	if !slices.Equal(c.offered, []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}) {
		t.Fatalf("offered %v over TLS", c.offered)
	}
	// A man in the middle terminates TLS with another certificate: the
	// client binds to what it saw, which is not what the gateway presented.
	mitm := newClient(t, "pw", []byte("the attacker's certificate"), true)
	mitm.binding = binding
	if _, err := authenticate(t, a, "alice", mitm); !errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("relayed exchange: %v", err)
	}
	// A client that supports binding but says the server does not offer it
	// ("y" flag) is a downgrade, and plain SCRAM still works over TLS.
	if _, err := authenticate(t, a, "alice", newClient(t, "pw", binding, false)); err != nil {
		t.Fatalf("plain SCRAM over TLS: %v", err)
	}
}

func TestVerifierRoundTrip(t *testing.T) {
	v, err := auth.Verifier(session.NewSecret("s3cret"))
	if err != nil || !strings.HasPrefix(v, "SCRAM-SHA-256$4096:") || strings.Contains(v, "s3cret") {
		t.Fatalf("%q, %v", v, err)
	}
	a, err := auth.NewStatic(auth.User{Name: "bob", Verifier: v})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := authenticate(t, a, "bob", newClient(t, "s3cret", nil, false)); err != nil {
		t.Fatalf("password against its verifier: %v", err)
	}
	// A verifier copied from pg_authid (password "postgres").
	const fromPostgres = "SCRAM-SHA-256$4096:rFLq5DqfmTnsgNa+JJUuqA==$8G/DTkB/HrAvrK2q7HaohK+PTLcrF5FFgkeOzdSPhsI=:Jgy/r8TkzLXAQMFEEhbW16SsRwdI0vkFIXX3OiIiEZ8="
	if _, err := auth.NewStatic(auth.User{Name: "pg", Verifier: fromPostgres}); err != nil {
		t.Fatalf("a PostgreSQL verifier: %v", err)
	}
}

func TestNewStaticRefusesBadUsers(t *testing.T) {
	pw := session.NewSecret("x")
	for name, users := range map[string][]auth.User{
		"empty name":          {{Password: pw}},
		"duplicate":           {{Name: "a", Password: pw}, {Name: "a", Password: pw}},
		"no secret":           {{Name: "a"}},
		"both secrets":        {{Name: "a", Password: pw, Verifier: "SCRAM-SHA-256$4096:AA==$AA==:AA=="}},
		"malformed verifier":  {{Name: "a", Verifier: "md5abc"}},
		"short verifier keys": {{Name: "a", Verifier: "SCRAM-SHA-256$4096:AAAA$AA==:AA=="}},
		"zero iterations":     {{Name: "a", Verifier: "SCRAM-SHA-256$0:AAAA$" + strings.Repeat("A", 43) + "=:" + strings.Repeat("A", 43) + "="}},
	} {
		if _, err := auth.NewStatic(users...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
