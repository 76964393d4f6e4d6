package proxy_test

// OIDC tokens through the gateway against the real cluster and a real
// OpenID Provider (internal/devidp): SASL OAUTHBEARER, tokens that must be
// refused before any upstream connection, key rotation at the IdP, tokens
// expiring and revoked during a session, and the cost of a login.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/internal/devidp"
	"github.com/pgwarden/pgwarden/proxy"
	"github.com/pgwarden/pgwarden/session"
)

// oidcBearer makes cfg log in with SASL OAUTHBEARER presenting token; with
// ask, it also asks for it with the startup parameter pgwarden.auth.
func oidcBearer(cfg *pgx.ConnConfig, token string, ask bool) *pgx.ConnConfig {
	cfg.OAuthTokenProvider = func(context.Context) (string, error) { return token, nil }
	if ask {
		cfg.RuntimeParams["pgwarden.auth"] = "oauthbearer"
	}
	return cfg
}

// oidcMethod returns how the session on conn authenticated, from the
// recording.
func oidcMethod(t testing.TB, ig *identGateway, conn *pgx.Conn) string {
	t.Helper()
	s := identQuerySettings(t, conn)
	if s.subject != "alice" {
		t.Fatalf("pgwarden.subject = %q, want alice", s.subject)
	}
	return identStart(t, ig.rec, s.sessionID).Info.Identity.Method
}

// TestOIDCOAuthBearer: the token over SASL OAUTHBEARER (what pgx and
// PostgreSQL 18's libpq speak), by request or always, and the password
// exchange for clients that do not ask for it.
func TestOIDCOAuthBearer(t *testing.T) {
	ctx := testContext(t)
	idp := identIdP(t, nil)
	tok, err := idp.PersonToken(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	forged, err := idp.SignWithUnknownKey(idp.Claims("alice"))
	if err != nil {
		t.Fatal(err)
	}
	gateways := map[string]*identGateway{}
	for _, mode := range []string{"auto", "always", "never"} {
		ig := startIdentGateway(t, identOIDC(t, idp, func(c *auth.OIDCConfig) { c.OAuthBearer = mode }),
			func(p *proxy.Proxy) { p.AllowPlaintext = false })
		ig.secret(tok)
		ig.secret(forged)
		gateways[mode] = ig
	}

	t.Run("auto, asked with pgwarden.auth", func(t *testing.T) {
		ig := gateways["auto"]
		conn := identConnect(t, oidcBearer(ig.config(t, ""), tok, true))
		if m := oidcMethod(t, ig, conn); m != "oauthbearer" {
			t.Fatalf("method %q, want oauthbearer", m)
		}
	})
	t.Run("auto, bad token over OAUTHBEARER", func(t *testing.T) {
		ig := gateways["auto"]
		before := ig.dials.Load()
		_, err := pgx.ConnectConfig(ctx, oidcBearer(ig.config(t, ""), forged, true))
		if err == nil || !strings.Contains(err.Error(), "OAuth authentication failed: invalid_token") {
			t.Fatalf("err = %v, want pgx's %q", err, "OAuth authentication failed: invalid_token")
		}
		if ig.dials.Load() != before {
			t.Fatal("a refused token opened an upstream connection")
		}
	})
	t.Run("auto, client without OAUTHBEARER", func(t *testing.T) {
		// No token provider, no pgwarden.auth: the password exchange, with
		// the token as the password.
		ig := gateways["auto"]
		conn := identConnect(t, ig.config(t, tok))
		if m := oidcMethod(t, ig, conn); m != "oidc" {
			t.Fatalf("method %q, want oidc (the password exchange)", m)
		}
	})
	t.Run("auto, token provider but not asked", func(t *testing.T) {
		// pgx has a token provider but did not ask: it is asked for a
		// password, and sends the token as one.
		ig := gateways["auto"]
		conn := identConnect(t, oidcBearer(ig.config(t, tok), tok, false))
		if m := oidcMethod(t, ig, conn); m != "oidc" {
			t.Fatalf("method %q, want oidc", m)
		}
	})
	t.Run("always, not asked", func(t *testing.T) {
		ig := gateways["always"]
		conn := identConnect(t, oidcBearer(ig.config(t, ""), tok, false))
		if m := oidcMethod(t, ig, conn); m != "oauthbearer" {
			t.Fatalf("method %q, want oauthbearer", m)
		}
	})
	t.Run("always, client without OAUTHBEARER", func(t *testing.T) {
		ig := gateways["always"]
		before := ig.dials.Load()
		if _, err := pgx.ConnectConfig(ctx, ig.config(t, tok)); err == nil {
			t.Fatal("a client that cannot do OAUTHBEARER got in with oauth_bearer always")
		}
		if ig.dials.Load() != before {
			t.Fatal("the refused client opened an upstream connection")
		}
	})
	t.Run("never, asked with pgwarden.auth", func(t *testing.T) {
		ig := gateways["never"]
		conn := identConnect(t, oidcBearer(ig.config(t, tok), tok, true))
		if m := oidcMethod(t, ig, conn); m != "oidc" {
			t.Fatalf("method %q, want oidc (the password exchange)", m)
		}
	})
}

// oidcSegment is base64url without padding, as in a compact JWS.
func oidcSegment(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestOIDCRefusedTokens: bad tokens are refused with FATAL 28P01, for the
// reason the case is about, before any upstream connection, and never reach
// the log or the recording.
func TestOIDCRefusedTokens(t *testing.T) {
	ctx := testContext(t)
	idp := identIdP(t, nil)
	other := identIdP(t, nil) // another issuer, with its own keys
	ig := startIdentGateway(t, identOIDC(t, idp, nil), func(p *proxy.Proxy) { p.AllowPlaintext = false })

	// A good login first, so that the key set is cached and refusals are
	// about the tokens, not about discovery.
	good, err := idp.PersonToken(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	identConnect(t, ig.config(t, ig.secret(good))).Close(ctx)
	dialsAfterGood := ig.dials.Load()

	now := time.Now()
	sign := func(change func(c map[string]any)) string {
		c := idp.Claims("alice")
		change(c)
		tok, err := idp.Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	foreign, err := other.PersonToken(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	kid := idp.KeyID()
	claims, err := devidp.DecodeClaims(good)
	if err != nil {
		t.Fatal(err)
	}
	claims["sub"] = "mallory"
	hsInput := oidcSegment(map[string]string{"alg": "HS256", "typ": "JWT", "kid": kid}) + "." + parts[1]
	mac := hmac.New(sha256.New, idp.PublicKeyPEM())
	mac.Write([]byte(hsInput))
	unknownKid, err := idp.SignWithUnknownKey(idp.Claims("alice"))
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name, token, code string
		// why is in the gateway's log line about the refusal: the token is
		// refused for the reason the case is about.
		why string
	}{
		{"expired", sign(func(c map[string]any) {
			c["exp"], c["iat"], c["nbf"] = now.Add(-10*time.Minute).Unix(), now.Add(-20*time.Minute).Unix(), now.Add(-20*time.Minute).Unix()
		}), "28P01", "token expired at"},
		// "exp" gets no clock skew.
		{"expired seconds ago", sign(func(c map[string]any) {
			c["exp"], c["iat"], c["nbf"] = now.Add(-5*time.Second).Unix(), now.Add(-time.Minute).Unix(), now.Add(-time.Minute).Unix()
		}), "28P01", "token expired at"},
		{"not yet valid", sign(func(c map[string]any) {
			c["nbf"], c["exp"] = now.Add(10*time.Minute).Unix(), now.Add(20*time.Minute).Unix()
		}), "28P01", "token not valid before"},
		{"issued in the future", sign(func(c map[string]any) {
			c["iat"], c["nbf"], c["exp"] = now.Add(10*time.Minute).Unix(), now.Unix(), now.Add(20*time.Minute).Unix()
		}), "28P01", "token issued in the future"},
		{"no expiry", sign(func(c map[string]any) { delete(c, "exp") }), "28P01", "token has no expiry"},
		{"no subject", sign(func(c map[string]any) { delete(c, "sub") }), "28P01", `token has no \"sub\" claim`},
		{"wrong issuer (another IdP)", foreign, "28P01", "signing key is not in the issuer's key set"},
		{"wrong issuer (right key)", sign(func(c map[string]any) { c["iss"] = "https://idp.evil.example" }), "28P01", "issued by a different provider"},
		{"wrong audience", sign(func(c map[string]any) { c["aud"] = []string{"another-service"} }), "28P01", "expected audience"},
		{"alg none", oidcSegment(map[string]string{"alg": "none", "typ": "JWT"}) + "." + parts[1] + ".", "28P01", "the password is not a token"},
		{"alg none with a signature", oidcSegment(map[string]string{"alg": "none", "typ": "JWT", "kid": kid}) + "." + parts[1] + "." + parts[2],
			"28P01", `unexpected signature algorithm \"none\"`},
		{"HS256 signed with the public key", hsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)),
			"28P01", `unexpected signature algorithm \"HS256\"`},
		{"unknown kid", unknownKid, "28P01", "signing key is not in the issuer's key set"},
		{"tampered payload", parts[0] + "." + oidcSegment(claims) + "." + parts[2], "28P01", "signature does not verify"},
		{"over the size limit", sign(func(c map[string]any) { c["pad"] = strings.Repeat("x", auth.DefaultMaxTokenSize) }),
			"28P01", fmt.Sprintf("token longer than %d bytes", auth.DefaultMaxTokenSize)},
		{"not a token", "correct horse battery staple", "28P01", "the password is not a token"},
	}
	for _, tc := range cases {
		ig.secret(tc.token)
		t.Run(tc.name, func(t *testing.T) {
			logged := len(ig.logs.String())
			_, err := pgx.ConnectConfig(ctx, ig.config(t, tc.token))
			identRefused(t, tc.name, err, tc.code)
			switch {
			case err == nil:
			case tc.code == "28P01" && !strings.Contains(err.Error(), `password authentication failed for user "alice"`):
				t.Errorf("%v does not say the password failed", err)
			case tc.code == "28000" && !strings.Contains(err.Error(), "expired"):
				t.Errorf("%v does not say the credential expired", err)
			}
			if log := ig.logs.String()[logged:]; tc.why != "" && !strings.Contains(log, tc.why) {
				t.Errorf("the gateway's log does not give the reason %q:\n%s", tc.why, log)
			}
		})
	}
	// The same over OAUTHBEARER (but the one with spaces, which is not a
	// bearer token at all).
	for _, tc := range cases {
		if strings.Contains(tc.token, " ") {
			continue
		}
		_, err := pgx.ConnectConfig(ctx, oidcBearer(ig.config(t, ""), tc.token, true))
		if tc.code == "28000" {
			identRefused(t, tc.name+" over OAUTHBEARER", err, tc.code)
		} else if err == nil || !strings.Contains(err.Error(), "OAuth authentication failed: invalid_token") {
			t.Errorf("%s over OAUTHBEARER: %v, want pgx's OAuth authentication failed: invalid_token", tc.name, err)
		}
	}
	if n := ig.dials.Load() - dialsAfterGood; n != 0 {
		t.Fatalf("refused tokens opened %d upstream connections", n)
	}
}

// TestOIDCKeyRotation: the IdP rotates its signing key and stops
// publishing the old one; the running gateway accepts tokens signed with
// the new key and refuses those signed with the old one.
func TestOIDCKeyRotation(t *testing.T) {
	ctx := testContext(t)
	idp := identIdP(t, nil)
	// The gateway fetches the key set again for an unknown key id at most
	// every 10 seconds (so that made-up key ids cannot flood the IdP); its
	// clock is moved forward past that instead of waiting.
	var ahead atomic.Int64
	a := identOIDC(t, idp, func(c *auth.OIDCConfig) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
	})
	ig := startIdentGateway(t, a, func(p *proxy.Proxy) { p.AllowPlaintext = false })

	oldTok, err := idp.PersonToken(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	ig.secret(oldTok)
	oldKid := idp.KeyID()
	identConnect(t, ig.config(t, oldTok)).Close(ctx)

	newKid := idp.RotateKey()
	idp.DropOldKeys()
	if newKid == oldKid {
		t.Fatal("the IdP did not rotate")
	}
	newTok, err := idp.PersonToken(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	ig.secret(newTok)
	ahead.Store(int64(15 * time.Second))
	conn := identConnect(t, ig.config(t, newTok))
	if s := identQuerySettings(t, conn); s.subject != "alice" {
		t.Fatalf("new-key token: subject %q", s.subject)
	}
	before := ig.dials.Load()
	_, err = pgx.ConnectConfig(ctx, ig.config(t, oldTok))
	identRefused(t, "token signed with the dropped key", err, "28P01")
	if ig.dials.Load() != before {
		t.Fatal("the refused token opened an upstream connection")
	}
	// And the new key keeps working.
	identConnect(t, ig.config(t, newTok))
}

// TestOIDCTokenExpiryEndsTheSession: a session ends when its token
// expires (plus the configured grace), with FATAL 28000 saying so.
func TestOIDCTokenExpiryEndsTheSession(t *testing.T) {
	t.Parallel() // it waits for tokens to expire: let it overlap
	idp := identIdP(t, func(c *devidp.Config) { c.TokenLifetime = 3 * time.Second })
	expiry := func(t *testing.T, tok string) time.Time {
		c, err := devidp.DecodeClaims(tok)
		if err != nil {
			t.Fatal(err)
		}
		return time.Unix(int64(c["exp"].(float64)), 0)
	}
	const fatal = "terminating connection because its identity's token expired"

	t.Run("at exp", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		ig := startIdentGateway(t, identOIDC(t, idp, nil), func(p *proxy.Proxy) { p.AllowPlaintext = false })
		tok, err := idp.PersonToken(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		ig.secret(tok)
		conn := identConnect(t, ig.config(t, tok))
		s := identQuerySettings(t, conn)
		pgErr := identWaitFatal(t, conn.PgConn())
		if pgErr.Code != "28000" || pgErr.Message != fatal {
			t.Fatalf("session end: %s %q, want FATAL 28000 %q", pgErr.Code, pgErr.Message, fatal)
		}
		if exp := expiry(t, tok); time.Now().Before(exp) {
			t.Fatalf("the session ended before the token's exp %s", exp)
		}
		if end := identWaitEnd(t, ig.rec, s.sessionID); end.Reason != session.EndExpired || end.ErrorCode != "28000" {
			t.Fatalf("recorded end: %+v, want reason %q", end, session.EndExpired)
		}
		// The expired token cannot log in again.
		before := ig.dials.Load()
		_, err = pgx.ConnectConfig(ctx, ig.config(t, tok))
		identRefused(t, "expired token", err, "28P01")
		if ig.dials.Load() != before {
			t.Fatal("the expired token opened an upstream connection")
		}
	})

	t.Run("with grace", func(t *testing.T) {
		t.Parallel()
		ctx := testContext(t)
		ig := startIdentGateway(t, identOIDC(t, idp, func(c *auth.OIDCConfig) { c.ExpiryGrace = 2 * time.Second }),
			func(p *proxy.Proxy) { p.AllowPlaintext = false })
		tok, err := idp.PersonToken(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		ig.secret(tok)
		conn := identConnect(t, ig.config(t, tok))
		s := identQuerySettings(t, conn)
		// A second after exp, within the grace, the session still works.
		exp := expiry(t, tok)
		time.Sleep(time.Until(exp.Add(time.Second)))
		var n int
		if err := conn.QueryRow(ctx, "SELECT 7").Scan(&n); err != nil || n != 7 {
			t.Fatalf("a second after exp, within the grace: %d, %v", n, err)
		}
		pgErr := identWaitFatal(t, conn.PgConn())
		if pgErr.Code != "28000" || pgErr.Message != fatal {
			t.Fatalf("session end: %s %q, want FATAL 28000 %q", pgErr.Code, pgErr.Message, fatal)
		}
		if end := identWaitEnd(t, ig.rec, s.sessionID); end.Reason != session.EndExpired {
			t.Fatalf("recorded end: %+v, want reason %q", end, session.EndExpired)
		}
	})
}

// TestOIDCIntrospectionRevocation: with introspection, a token the IdP
// revokes ends the sessions using it, and cannot log in again.
func TestOIDCIntrospectionRevocation(t *testing.T) {
	t.Parallel() // it waits for rechecks: let it overlap
	ctx := testContext(t)
	idp := identIdP(t, nil)
	a := identOIDC(t, idp, func(c *auth.OIDCConfig) {
		c.Introspection = &auth.Introspection{ClientID: identIntrospector,
			ClientSecret: session.NewSecret(identIntrospectorSecret), Interval: time.Second}
	})
	ig := startIdentGateway(t, a, func(p *proxy.Proxy) { p.AllowPlaintext = false })
	toks, err := idp.Chain(ctx, "alice", "ci-job")
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range toks {
		ig.secret(tok)
	}
	conn := identConnect(t, ig.config(t, toks[1]))
	other := identConnect(t, ig.config(t, toks[0])) // not revoked
	s := identQuerySettings(t, conn)

	idp.Revoke(toks[1])
	pgErr := identWaitFatal(t, conn.PgConn())
	if pgErr.Code != "28000" || !strings.Contains(pgErr.Message, "identity provider") {
		t.Fatalf("session end: %s %q, want FATAL 28000 about the identity provider", pgErr.Code, pgErr.Message)
	}
	if end := identWaitEnd(t, ig.rec, s.sessionID); end.Reason != session.EndRevoked || end.ErrorCode != "28000" {
		t.Fatalf("recorded end: %+v, want reason %q", end, session.EndRevoked)
	}
	// The session of the token that was not revoked lives on, through
	// several rechecks.
	if _, err := other.Exec(ctx, "SELECT pg_sleep(1.5)"); err != nil {
		t.Fatalf("the session of an unrevoked token: %v", err)
	}
	before := ig.dials.Load()
	_, err = pgx.ConnectConfig(ctx, ig.config(t, toks[1]))
	identRefused(t, "revoked token", err, "28P01")
	if ig.dials.Load() != before {
		t.Fatal("the revoked token opened an upstream connection")
	}
}

// TestOAuthBearerRequiresTLS: a bearer token sent with SASL OAUTHBEARER is
// as exposed as a cleartext password (RFC 7628 §5, RFC 6750 §5.2): without
// TLS the gateway refuses it with FATAL 28000 ("requires TLS") before the
// client sends the token, as it does for the password exchange.
func TestOAuthBearerRequiresTLS(t *testing.T) {
	ctx := testContext(t)
	idp := identIdP(t, nil)
	ig := startIdentGateway(t, identOIDC(t, idp, nil), nil) // TLS offered, plaintext allowed
	tok, err := idp.PersonToken(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	ig.secret(tok)
	cfg, err := pgx.ParseConfig(ig.dsn("alice", "unused"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = tok
	// The password exchange is refused without TLS.
	_, err = pgx.ConnectConfig(ctx, cfg)
	if pgCode(err) != "28000" || !strings.Contains(err.Error(), "requires TLS") {
		t.Fatalf("token as a password without TLS: %v", err)
	}
	conn, err := pgx.ConnectConfig(ctx, oidcBearer(cfg, tok, true))
	if err == nil {
		conn.Close(ctx)
		t.Fatal("OAUTHBEARER without TLS was accepted: the bearer token crossed the network in the clear")
	}
	if pgCode(err) != "28000" {
		t.Fatalf("OAUTHBEARER without TLS: %v, want FATAL 28000", err)
	}
}

// TestOIDCExpiredTokenRefusedAtLoginDespiteGrace: ExpiryGrace lets a live
// session outlive its token, but a token whose exp has passed never logs
// in, with or without a grace (and without any clock skew on exp).
func TestOIDCExpiredTokenRefusedAtLoginDespiteGrace(t *testing.T) {
	ctx := testContext(t)
	idp := identIdP(t, nil)
	ig := startIdentGateway(t, identOIDC(t, idp, func(c *auth.OIDCConfig) { c.ExpiryGrace = time.Minute }),
		func(p *proxy.Proxy) { p.AllowPlaintext = false })
	now := time.Now()
	c := idp.Claims("alice")
	c["exp"], c["iat"], c["nbf"] = now.Add(-5*time.Second).Unix(), now.Add(-time.Minute).Unix(), now.Add(-time.Minute).Unix()
	tok, err := idp.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	ig.secret(tok)
	_, err = pgx.ConnectConfig(ctx, ig.config(t, tok))
	identRefused(t, "a token that expired 5 seconds ago, with ExpiryGrace set", err, "28P01")
	_, err = pgx.ConnectConfig(ctx, oidcBearer(ig.config(t, ""), tok, true))
	if err == nil || !strings.Contains(err.Error(), "OAuth authentication failed: invalid_token") {
		t.Errorf("the same over OAUTHBEARER: %v", err)
	}
	if ig.dials.Load() != 0 {
		t.Fatal("the expired token opened an upstream connection")
	}
}

// BenchmarkConnectSetup is the time to open a connection (up to the first
// ReadyForQuery) and close it, over verify-full TLS: directly to the
// cluster, through the gateway as a static SCRAM user, and through the
// gateway with an OIDC token as the password.
//
//	go test ./proxy -run XXX -bench ConnectSetup -benchtime 200x
func BenchmarkConnectSetup(b *testing.B) {
	quiet := func(p *proxy.Proxy) {
		p.Recorder = nil
		p.Logger = slog.New(slog.DiscardHandler)
	}
	static := startGateway(b, quiet)
	idp := identIdP(b, nil)
	tok, err := idp.PersonToken(b.Context(), "alice")
	if err != nil {
		b.Fatal(err)
	}
	oidc := startGateway(b, func(p *proxy.Proxy) {
		quiet(p)
		p.Authenticator = identOIDC(b, idp, nil)
	})
	oidcCfg, err := pgconn.ParseConfig(oidc.tlsDSN("alice", "unused"))
	if err != nil {
		b.Fatal(err)
	}
	oidcCfg.Password = tok
	for _, target := range []struct {
		name string
		dsn  string
		cfg  *pgconn.Config
	}{
		{name: "direct", dsn: pg.TLSConnString(rwRole, rwPassword, "app")},
		{name: "gateway-static-scram", dsn: static.tlsDSN("alice", alicePassword)},
		{name: "gateway-oidc", cfg: oidcCfg},
	} {
		cfg := target.cfg
		if cfg == nil {
			if cfg, err = pgconn.ParseConfig(target.dsn); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(target.name, func(b *testing.B) {
			ctx := testContext(b)
			for b.Loop() {
				c, err := pgconn.ConnectConfig(ctx, cfg)
				if err != nil {
					b.Fatal(err)
				}
				if err := c.Close(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
