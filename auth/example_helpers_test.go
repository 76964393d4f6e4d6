package auth_test

// The plumbing of the examples: clients that answer the authenticators'
// questions, and identity providers on loopback standing in for yours.
// Examples show the API; these helpers are what a real client or IdP
// does.

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/xdg-go/scram"

	"github.com/pgwarden/pgwarden/internal/devidp"
	"github.com/pgwarden/pgwarden/session"
)

// passwordClient is a client that sends its password (or token, or SAML
// assertion) in clear when asked, as psql does with PGPASSWORD. It offers
// no SASL mechanism.
type passwordClient struct{ password string }

func (c passwordClient) CleartextPassword(context.Context) (session.Secret, error) {
	return session.NewSecret(c.password), nil
}
func (passwordClient) SASLStart(context.Context, []string) (string, []byte, error) {
	return "", nil, errors.New("no SASL")
}
func (passwordClient) SASLContinue(context.Context, []byte) ([]byte, error) {
	return nil, errors.New("no SASL")
}
func (passwordClient) SASLFinal(context.Context, []byte) error { return errors.New("no SASL") }
func (passwordClient) TLSServerEndPoint() []byte               { return nil }

// scramPasswordClient is a client that runs SCRAM-SHA-256 with its password, as
// libpq and pgx do; it never sends the password itself.
type scramPasswordClient struct {
	password string
	conv     *scram.ClientConversation
}

func (c *scramPasswordClient) CleartextPassword(context.Context) (session.Secret, error) {
	return session.Secret{}, errors.New("scramPasswordClient: no cleartext password")
}

func (c *scramPasswordClient) SASLStart(_ context.Context, mechanisms []string) (string, []byte, error) {
	if !slices.Contains(mechanisms, "SCRAM-SHA-256") {
		return "", nil, errors.New("scramPasswordClient: SCRAM-SHA-256 not offered")
	}
	cl, err := scram.SHA256.NewClient("", c.password, "")
	if err != nil {
		return "", nil, err
	}
	c.conv = cl.NewConversation()
	first, err := c.conv.Step("")
	return "SCRAM-SHA-256", []byte(first), err
}

func (c *scramPasswordClient) SASLContinue(_ context.Context, challenge []byte) ([]byte, error) {
	resp, err := c.conv.Step(string(challenge))
	return []byte(resp), err
}

func (c *scramPasswordClient) SASLFinal(_ context.Context, data []byte) error {
	_, err := c.conv.Step(string(data))
	return err
}

func (c *scramPasswordClient) TLSServerEndPoint() []byte { return nil }

// startExampleIdP starts an OpenID Provider on loopback (plain HTTP, for
// examples and tests only) that knows alice, two workloads that act for
// others (ci-job and agent), and the gateway as an introspection client.
func startExampleIdP() *devidp.Provider {
	p, err := devidp.Start(context.Background(), devidp.Config{
		Audience: "pgwarden",
		Users:    []devidp.User{{Subject: "alice", Name: "Alice", Groups: []string{"analysts"}}},
		Clients: []devidp.Client{
			{ID: "ci-job", Secret: "ci-job-secret", Groups: []string{"ci"}},
			{ID: "agent", Secret: "agent-secret", Groups: []string{"agents"}},
		},
		Introspectors: []devidp.Client{{ID: "pgwarden", Secret: "pgwarden-introspection-secret"}},
	})
	if err != nil {
		panic(err)
	}
	return p
}

// exampleSAMLIdP is a SAML 2.0 identity provider (crewjam/saml's) whose
// entity ID is https://idp.example.com/saml/metadata, and which knows the
// gateway as https://gateway.example.com/saml.
type exampleSAMLIdP struct{ idp *saml.IdentityProvider }

func newExampleSAMLIdP() exampleSAMLIdP {
	idp := newSAMLIdP(exampleT, samlIdPEntityID, 0)
	idp.Clock = nil // the real time: the gateway checks assertions against it
	return exampleSAMLIdP{idp}
}

// Metadata returns the IdP's metadata, as its administrators publish it.
func (p exampleSAMLIdP) Metadata() []byte {
	b, err := xml.Marshal(p.idp.Metadata())
	if err != nil {
		panic(err)
	}
	return b
}

// Login returns what the IdP posts for the gateway after nameID logged
// in: a signed Response, base64-encoded.
func (p exampleSAMLIdP) Login(nameID string, groups ...string) string {
	now := time.Now()
	sess := &saml.Session{ID: "s1", CreateTime: now, ExpireTime: now.Add(8 * time.Hour), Index: "1",
		NameID: nameID, NameIDFormat: string(saml.EmailAddressNameIDFormat), Groups: groups}
	req, err := p.idp.NewIdpInitiatedRequest(httptest.NewRequest("GET", "https://idp.example.com/login", nil), samlAudience, "")
	if err != nil {
		panic(err)
	}
	if err := (saml.DefaultAssertionMaker{}).MakeAssertion(req, sess); err != nil {
		panic(err)
	}
	if err := req.MakeAssertionEl(); err != nil {
		panic(err)
	}
	if err := req.MakeResponse(); err != nil {
		panic(err)
	}
	return b64(samlElementBytes(exampleT, req.ResponseEl))
}

// exampleT stands in for the *testing.T of the test helpers the examples
// reuse: an example has none. A failure panics, which fails the example.
var exampleT testing.TB = exampleTB{}

type exampleTB struct{ testing.TB }

func (exampleTB) Helper()                        {}
func (exampleTB) Fatal(args ...any)              { panic(fmt.Sprint(args...)) }
func (exampleTB) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
func (exampleTB) Error(args ...any)              { panic(fmt.Sprint(args...)) }
func (exampleTB) Errorf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
