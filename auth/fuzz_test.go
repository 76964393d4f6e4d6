package auth_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/internal/devidp"
	"github.com/pgwarden/pgwarden/session"
)

// FuzzSAMLPassword feeds the SAML authenticator arbitrary passwords (the
// client controls them entirely): it must never panic, never accept
// anything but a correctly signed assertion, and never quote the input in
// its errors.
func FuzzSAMLPassword(f *testing.F) {
	idp := newSAMLIdP(f, samlIdPEntityID, 0)
	response, assertion, unsigned := samlIssue(f, idp, samlAudience, samlAlice(), nil)
	a := newSAMLAuth(f, idp, samlIssued.Add(time.Second), nil)
	for _, seed := range [][]byte{response, assertion, unsigned, []byte("<x/>"), []byte("<?xml version='1.0'?><!DOCTYPE x><x/>")} {
		f.Add(b64(seed))
	}
	f.Add("not base64 at all")
	f.Add("")
	f.Fuzz(func(t *testing.T, password string) {
		id, err := samlAuthenticate(a, password)
		if err == nil {
			// Only the genuine, unmodified signed documents may pass.
			decoded, _ := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(password), ""))
			if id.Subject == "" || (string(decoded) != string(response) && string(decoded) != string(assertion)) {
				t.Fatalf("accepted a modified document: subject %q", id.Subject)
			}
			return
		}
		if len(password) >= 16 && strings.Contains(err.Error(), password) {
			t.Fatalf("the error quotes the password: %v", err)
		}
	})
}

// FuzzOIDCToken feeds the OIDC verifier arbitrary tokens: it must never
// panic, never accept a token it did not see signed by the IdP, and never
// quote the token in its errors.
func FuzzOIDCToken(f *testing.F) {
	ctx, cancel := context.WithCancel(context.Background())
	f.Cleanup(cancel)
	idp, err := devidp.Start(ctx, devidp.Config{Clients: []devidp.Client{{ID: "agent"}}})
	if err != nil {
		f.Fatal(err)
	}
	o, err := auth.NewOIDC(auth.OIDCConfig{Issuer: idp.Issuer(), Audience: idp.Audience()})
	if err != nil {
		f.Fatal(err)
	}
	good, err := idp.ClientToken(ctx, "agent")
	if err != nil {
		f.Fatal(err)
	}
	want, err := o.Verify(ctx, session.NewSecret(good)) // also warms the key cache
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	parts := strings.Split(good, ".")
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none"}`)) + "." + parts[1] + ".")
	f.Add(parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"x","act":{"act":{"act":1}}}`)) + "." + parts[2])
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, token string) {
		id, err := o.Verify(ctx, session.NewSecret(token))
		if err == nil {
			// Base64 has more than one spelling of some bytes; the claims
			// must be the signed ones.
			if id.Subject != "agent" || id.Claims.String() != want.Claims.String() {
				t.Fatalf("accepted a token the IdP did not sign: subject %q", id.Subject)
			}
			return
		}
		if len(token) >= 16 && strings.Contains(err.Error(), token) {
			t.Fatalf("the error quotes the token: %v", err)
		}
	})
}
