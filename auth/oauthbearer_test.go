package auth

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/internal/devidp"
	"github.com/pgwarden/pgwarden/session"
)

func TestParseOAuthBearer(t *testing.T) {
	cases := []struct {
		name string
		msg  string
		tok  string
		err  bool
	}{
		{name: "token", msg: "n,,\x01auth=Bearer tok\x01\x01", tok: "tok"},
		{name: "JWT-shaped token", msg: "n,,\x01auth=Bearer aGVs.bG8x.c2ln\x01\x01", tok: "aGVs.bG8x.c2ln"},
		{name: "scheme in any case", msg: "n,,\x01auth=bEARER tok\x01\x01", tok: "tok"},
		{name: "several spaces before the token", msg: "n,,\x01auth=Bearer   tok\x01\x01", tok: "tok"},
		{name: "authzid", msg: "n,a=user,\x01auth=Bearer tok\x01\x01", tok: "tok"},
		{name: "empty authzid", msg: "n,a=,\x01auth=Bearer tok\x01\x01", tok: "tok"},
		{name: "client supports channel binding (y)", msg: "y,,\x01auth=Bearer tok\x01\x01", tok: "tok"},
		{name: "other pairs around auth", msg: "n,,\x01host=db.example\x01auth=Bearer tok\x01port=5432\x01\x01", tok: "tok"},
		{name: "empty auth: discovery", msg: "n,,\x01auth=\x01\x01", tok: ""},
		{name: "no auth pair: discovery", msg: "n,,\x01host=db.example\x01\x01", tok: ""},
		{name: "channel binding requested", msg: "p=tls-server-end-point,,\x01auth=Bearer tok\x01\x01", err: true},
		{name: "no GS2 header", msg: "\x01auth=Bearer tok\x01\x01", err: true},
		{name: "unknown GS2 flag", msg: "x,,\x01auth=Bearer tok\x01\x01", err: true},
		{name: "GS2 header without second comma", msg: "n,\x01auth=Bearer tok\x01\x01", err: true},
		{name: "authzid without a=", msg: "n,user,\x01auth=Bearer tok\x01\x01", err: true},
		{name: "missing trailing \\x01\\x01", msg: "n,,\x01auth=Bearer tok", err: true},
		{name: "single trailing \\x01", msg: "n,,\x01auth=Bearer tok\x01", err: true},
		{name: "missing leading \\x01", msg: "n,,auth=Bearer tok\x01\x01", err: true},
		{name: "empty message", msg: "", err: true},
		{name: "GS2 header only", msg: "n,,", err: true},
		{name: "Basic scheme", msg: "n,,\x01auth=Basic dXNlcjpwYXNz\x01\x01", err: true},
		{name: "Bearer without token", msg: "n,,\x01auth=Bearer\x01\x01", err: true},
		{name: "Bearer and spaces only", msg: "n,,\x01auth=Bearer   \x01\x01", err: true},
		{name: "token with a space", msg: "n,,\x01auth=Bearer tok en\x01\x01", err: true},
		{name: "token with a tab", msg: "n,,\x01auth=Bearer tok\ten\x01\x01", err: true},
		{name: "token with a newline", msg: "n,,\x01auth=Bearer tok\nen\x01\x01", err: true},
		{name: "trailing space", msg: "n,,\x01auth=Bearer tok \x01\x01", err: true},
		{name: "two auth pairs", msg: "n,,\x01auth=Bearer one\x01auth=Bearer two\x01\x01", err: true},
		{name: "two auth pairs, first empty", msg: "n,,\x01auth=\x01auth=Bearer two\x01\x01", err: true},
		{name: "NUL in the token", msg: "n,,\x01auth=Bearer t\x00ok\x01\x01", err: true},
		{name: "NUL in the header", msg: "n,a=u\x00,\x01auth=Bearer tok\x01\x01", err: true},
		{name: "key with a digit", msg: "n,,\x01auth2=x\x01auth=Bearer tok\x01\x01", err: true},
		{name: "key with a dash", msg: "n,,\x01x-y=1\x01auth=Bearer tok\x01\x01", err: true},
		{name: "empty key", msg: "n,,\x01=v\x01auth=Bearer tok\x01\x01", err: true},
		{name: "pair without =", msg: "n,,\x01auth\x01\x01", err: true},
		{name: "empty pair in the middle", msg: "n,,\x01auth=Bearer tok\x01\x01host=x\x01\x01", err: true},
		{name: "three trailing \\x01", msg: "n,,\x01auth=Bearer tok\x01\x01\x01", err: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := parseOAuthBearer([]byte(tc.msg))
			switch {
			case tc.err && err == nil:
				t.Fatalf("accepted, token %q", tok)
			case tc.err && !errors.Is(err, ErrExchange):
				t.Fatalf("err = %v, want ErrExchange", err)
			case tc.err && tok != "":
				t.Fatalf("token %q returned with an error", tok)
			case !tc.err && err != nil:
				t.Fatalf("refused: %v", err)
			case tok != tc.tok:
				t.Fatalf("token = %q, want %q", tok, tc.tok)
			}
			if err != nil && (strings.ContainsAny(err.Error(), "\x00\x01") || strings.Contains(err.Error(), "dXNlcjpwYXNz")) {
				t.Errorf("error quotes the message: %q", err)
			}
		})
	}
}

// TestParseOAuthBearerWithoutPairs: RFC 7628 §3.1 allows an initial
// response with no key/value pairs at all, gs2-header %x01 %x01
// ("n,,\x01\x01"). Any client can send it before authenticating; it once
// made the parser slice out of range and crash the gateway.
func TestParseOAuthBearerWithoutPairs(t *testing.T) {
	for _, msg := range []string{"n,,\x01\x01", "y,,\x01\x01", "n,a=x,\x01\x01"} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("parseOAuthBearer(%q) panics: %v", msg, r)
				}
			}()
			tok, err := parseOAuthBearer([]byte(msg))
			if tok != "" {
				t.Errorf("parseOAuthBearer(%q) = %q, %v", msg, tok, err)
			}
		}()
	}
	// The same through OIDC.Authenticate, before any token is checked.
	o, err := NewOIDC(OIDCConfig{Issuer: "https://idp.invalid", Audience: "pgwarden", OAuthBearer: "always"})
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("OIDC.Authenticate panics on the client message \"n,,\\x01\\x01\": %v", r)
			}
		}()
		_, err := o.Authenticate(t.Context(), &Request{User: "u", Database: "d", Client: &bearerConv{initial: []byte("n,,\x01\x01")}})
		if err == nil {
			t.Error("authenticated without a token")
		}
	}()
}

func FuzzParseOAuthBearer(f *testing.F) {
	for _, s := range []string{
		"n,,\x01auth=Bearer tok\x01\x01",
		"n,a=user,\x01auth=Bearer eyJ.eyJ.sig\x01\x01",
		"y,,\x01host=h\x01port=5432\x01auth=bearer x\x01\x01",
		"n,,\x01auth=\x01\x01",
		"p=tls-server-end-point,,\x01auth=Bearer tok\x01\x01",
		"n,,\x01auth=Bearer a\x01auth=Bearer b\x01\x01",
		"",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		defer func() {
			if r := recover(); r != nil {
				t.Fatalf("parseOAuthBearer(%q) panics: %v", msg, r)
			}
		}()
		tok, err := parseOAuthBearer(msg)
		if err != nil {
			if !errors.Is(err, ErrExchange) {
				t.Fatalf("err = %v, want ErrExchange", err)
			}
			if tok != "" {
				t.Fatalf("token %q with an error", tok)
			}
			return
		}
		if tok == "" {
			return // a discovery request
		}
		if strings.ContainsAny(tok, " \t\r\n\x00\x01") {
			t.Fatalf("token %q holds a separator", tok)
		}
		if !strings.Contains(string(msg), "\x01") || !strings.Contains(string(msg), tok+"\x01") {
			t.Fatalf("token %q is not in the message %q", tok, msg)
		}
		if !strings.Contains(string(msg), "auth=") {
			t.Fatalf("token %q without an auth pair in %q", tok, msg)
		}
	})
}

// bearerConv plays a PostgreSQL 18 client doing SASL OAUTHBEARER.
type bearerConv struct {
	initial    []byte // initial response; nil sends none
	afterEmpty []byte // answer to the empty challenge when initial is nil
	ack        []byte // answer to the error status; nil means "\x01"
	ackErr     error  // the client hangs up instead of acknowledging

	offered    []string
	challenges [][]byte
	cleartext  int
	final      int
	password   string
}

func (c *bearerConv) CleartextPassword(context.Context) (session.Secret, error) {
	c.cleartext++
	return session.NewSecret(c.password), nil
}

func (c *bearerConv) SASLStart(_ context.Context, mechs []string) (string, []byte, error) {
	c.offered = mechs
	return mechOAuthBearer, c.initial, nil
}

func (c *bearerConv) SASLContinue(_ context.Context, challenge []byte) ([]byte, error) {
	c.challenges = append(c.challenges, challenge)
	if len(challenge) == 0 {
		return c.afterEmpty, nil
	}
	if c.ackErr != nil {
		return nil, c.ackErr
	}
	if c.ack == nil {
		return []byte("\x01"), nil
	}
	return c.ack, nil
}

func (c *bearerConv) SASLFinal(context.Context, []byte) error { c.final++; return nil }
func (c *bearerConv) TLSServerEndPoint() []byte               { return nil }

func bearerMsg(tok string) []byte { return []byte("n,,\x01auth=Bearer " + tok + "\x01\x01") }

func bearerIdP(t *testing.T) (*devidp.Provider, string) {
	t.Helper()
	p, err := devidp.Start(t.Context(), devidp.Config{
		TokenLifetime: time.Hour,
		Clients:       []devidp.Client{{ID: "agent", Groups: []string{"agents"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	tok, err := p.ClientToken(t.Context(), "agent")
	if err != nil {
		t.Fatal(err)
	}
	return p, tok
}

func newBearerOIDC(t *testing.T, p *devidp.Provider, mode string) *OIDC {
	t.Helper()
	o, err := NewOIDC(OIDCConfig{Issuer: p.Issuer(), Audience: p.Audience(), OAuthBearer: mode})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// checkBearerStatus checks the RFC 7628 §3.2.2 error status the server sent.
func checkBearerStatus(t *testing.T, p *devidp.Provider, challenge []byte) {
	t.Helper()
	var st map[string]string
	if err := json.Unmarshal(challenge, &st); err != nil {
		t.Fatalf("error status %q is not a JSON object of strings: %v", challenge, err)
	}
	want := map[string]string{
		"status":               "invalid_token",
		"scope":                "openid",
		"openid-configuration": p.Issuer() + "/.well-known/openid-configuration",
	}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("error status %s = %q, want %q", k, st[k], v)
		}
	}
}

func TestOAuthBearerAuthenticate(t *testing.T) {
	p, tok := bearerIdP(t)
	ctx := t.Context()

	t.Run("valid token", func(t *testing.T) {
		conv := &bearerConv{initial: bearerMsg(tok)}
		id, err := newBearerOIDC(t, p, "always").Authenticate(ctx, &Request{User: "u", Database: "d", Client: conv})
		if err != nil {
			t.Fatal(err)
		}
		if id.Subject != "agent" || id.Method != "oauthbearer" || id.Issuer != p.Issuer() || !slices.Equal(id.Groups, []string{"agents"}) {
			t.Errorf("identity = %+v", id)
		}
		if !slices.Equal(conv.offered, []string{"OAUTHBEARER"}) {
			t.Errorf("offered %q", conv.offered)
		}
		if len(conv.challenges) != 0 || conv.cleartext != 0 || conv.final != 0 {
			t.Errorf("challenges %q, cleartext %d, final %d: the exchange must end with AuthenticationOk", conv.challenges, conv.cleartext, conv.final)
		}
	})

	t.Run("no initial response", func(t *testing.T) {
		conv := &bearerConv{afterEmpty: bearerMsg(tok)}
		id, err := newBearerOIDC(t, p, "always").Authenticate(ctx, &Request{Client: conv})
		if err != nil || id.Subject != "agent" {
			t.Fatalf("%+v %v", id, err)
		}
		if len(conv.challenges) != 1 || len(conv.challenges[0]) != 0 {
			t.Errorf("challenges = %q, want one empty challenge", conv.challenges)
		}
	})

	refused := func(t *testing.T, conv *bearerConv, secret string) {
		t.Helper()
		_, err := newBearerOIDC(t, p, "always").Authenticate(ctx, &Request{Client: conv})
		if !errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("err = %v, want ErrInvalidCredentials", err)
		}
		if secret != "" && strings.Contains(err.Error(), secret) {
			t.Errorf("error quotes the token: %v", err)
		}
		if len(conv.challenges) != 1 {
			t.Fatalf("challenges = %q, want the error status", conv.challenges)
		}
		checkBearerStatus(t, p, conv.challenges[0])
	}

	t.Run("invalid token", func(t *testing.T) {
		bad, err := p.SignWithUnknownKey(p.Claims("agent"))
		if err != nil {
			t.Fatal(err)
		}
		refused(t, &bearerConv{initial: bearerMsg(bad)}, bad)
	})
	t.Run("expired token", func(t *testing.T) {
		c := p.Claims("agent")
		c["exp"] = time.Now().Add(-time.Hour).Unix()
		bad, err := p.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		refused(t, &bearerConv{initial: bearerMsg(bad)}, bad)
	})
	t.Run("not a JWT", func(t *testing.T) {
		// Over OAUTHBEARER there is no other authenticator to pass an
		// opaque token to: it is invalid, not ErrNotApplicable.
		refused(t, &bearerConv{initial: bearerMsg("opaque-token")}, "opaque-token")
	})
	t.Run("discovery request", func(t *testing.T) {
		refused(t, &bearerConv{initial: []byte("n,,\x01auth=\x01\x01")}, "")
	})
	t.Run("client hangs up instead of acknowledging", func(t *testing.T) {
		refused(t, &bearerConv{initial: []byte("n,,\x01auth=\x01\x01"), ackErr: errors.New("EOF")}, "")
	})
	t.Run("wrong acknowledgement", func(t *testing.T) {
		conv := &bearerConv{initial: []byte("n,,\x01auth=\x01\x01"), ack: []byte("n,,\x01auth=Bearer " + tok + "\x01\x01")}
		_, err := newBearerOIDC(t, p, "always").Authenticate(ctx, &Request{Client: conv})
		if !errors.Is(err, ErrExchange) {
			t.Fatalf("err = %v, want ErrExchange", err)
		}
	})
	t.Run("malformed message", func(t *testing.T) {
		conv := &bearerConv{initial: []byte("p=tls-server-end-point,,\x01auth=Bearer " + tok + "\x01\x01")}
		_, err := newBearerOIDC(t, p, "always").Authenticate(ctx, &Request{Client: conv})
		if !errors.Is(err, ErrExchange) || errors.Is(err, ErrInvalidCredentials) {
			t.Fatalf("err = %v, want ErrExchange", err)
		}
		if len(conv.challenges) != 0 {
			t.Errorf("challenges after a malformed message: %q", conv.challenges)
		}
	})
}

// TestOAuthBearerMode: which exchange OIDC chooses.
func TestOAuthBearerMode(t *testing.T) {
	p, tok := bearerIdP(t)
	cases := []struct {
		mode, method string
		sasl         bool
	}{
		{"", "", false},
		{"", MethodOAuthBearer, true},
		{"auto", "", false},
		{"auto", MethodPassword, false},
		{"auto", MethodOAuthBearer, true},
		{"always", "", true},
		{"always", MethodPassword, true},
		{"never", MethodOAuthBearer, false},
	}
	for _, tc := range cases {
		conv := &bearerConv{initial: bearerMsg(tok), password: tok}
		req := &Request{User: "u", Database: "d", Method: tc.method, Client: conv}
		id, err := newBearerOIDC(t, p, tc.mode).Authenticate(t.Context(), req)
		if err != nil {
			t.Errorf("mode %q, method %q: %v", tc.mode, tc.method, err)
			continue
		}
		wantMethod := "oidc"
		if tc.sasl {
			wantMethod = "oauthbearer"
		}
		sasl := conv.offered != nil
		if sasl != tc.sasl || (conv.cleartext == 1) == tc.sasl || id.Method != wantMethod {
			t.Errorf("mode %q, method %q: SASL %v, cleartext asked %d times, identity method %q; want SASL %v, method %q",
				tc.mode, tc.method, sasl, conv.cleartext, id.Method, tc.sasl, wantMethod)
		}
	}
}
