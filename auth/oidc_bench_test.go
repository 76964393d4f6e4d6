package auth_test

import (
	"testing"

	"github.com/pgwarden/pgwarden/session"
)

// BenchmarkOIDCVerifyWarm measures Verify of a valid token once discovery
// ran and the key set is cached: signature, claims, identity mapping.
func BenchmarkOIDCVerifyWarm(b *testing.B) {
	p := oidcIdP(b)
	a := newOIDCFor(b, p, nil)
	tok := session.NewSecret(mustTok(b)(p.ClientToken(b.Context(), "ci-job")))
	if _, err := a.Verify(b.Context(), tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Verify(b.Context(), tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOIDCVerifyChain4 measures Verify of the token at the end of a
// 4-hop delegation chain (alice, ci-job, agent, sub-agent).
func BenchmarkOIDCVerifyChain4(b *testing.B) {
	p := oidcIdP(b)
	a := newOIDCFor(b, p, nil)
	toks, err := p.Chain(b.Context(), "alice", "ci-job", "agent", "sub-agent")
	if err != nil {
		b.Fatal(err)
	}
	tok := session.NewSecret(toks[len(toks)-1])
	id, err := a.Verify(b.Context(), tok)
	if err != nil {
		b.Fatal(err)
	}
	if id.Depth() != 3 {
		b.Fatalf("depth %d", id.Depth())
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := a.Verify(b.Context(), tok); err != nil {
			b.Fatal(err)
		}
	}
}
