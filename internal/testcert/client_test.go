package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"slices"
	"testing"
	"time"
)

func TestIssueClient(t *testing.T) {
	ca, err := NewAuthority("pgwarden test CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue("server", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ca.IssueClient(ClientOptions{
		CommonName:          "ci job",
		OrganizationalUnits: []string{"ci"},
		URIs:                []string{"spiffe://example.org/ci/job"},
		Emails:              []string{"ci@example.org"},
	})
	if err != nil {
		t.Fatal(err)
	}
	leaf := cli.Certificate.Leaf
	if leaf.Subject.CommonName != "ci job" || !slices.Equal(leaf.Subject.OrganizationalUnit, []string{"ci"}) ||
		len(leaf.URIs) != 1 || leaf.URIs[0].String() != "spiffe://example.org/ci/job" ||
		!slices.Equal(leaf.EmailAddresses, []string{"ci@example.org"}) ||
		!slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) ||
		len(leaf.DNSNames) != 0 || len(leaf.IPAddresses) != 0 {
		t.Fatalf("client certificate fields: %+v", leaf)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("verify as a client certificate: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.Pool()}); err == nil {
		t.Fatal("a client-only certificate verified as a server certificate")
	}
	cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{cli.Certificate}, MinVersion: tls.VersionTLS12}
	if cErr, sErr := handshake(t, srv.Certificate, ca.Pool(), cfg); cErr != nil || sErr != nil {
		t.Fatalf("mutual TLS: client %v, server %v", cErr, sErr)
	}

	// A custom validity window.
	nb, na := time.Now().Add(-2*time.Hour).Truncate(time.Second), time.Now().Add(time.Hour).Truncate(time.Second)
	short, err := ca.IssueClient(ClientOptions{CommonName: "short", NotBefore: nb, NotAfter: na})
	if err != nil {
		t.Fatal(err)
	}
	if l := short.Certificate.Leaf; !l.NotBefore.Equal(nb) || !l.NotAfter.Equal(na) {
		t.Fatalf("validity %s..%s, want %s..%s", l.NotBefore, l.NotAfter, nb, na)
	}

	for _, bad := range []ClientOptions{{}, {URIs: []string{"not a uri"}}, {URIs: []string{"::"}}} {
		if _, err := ca.IssueClient(bad); err == nil {
			t.Errorf("IssueClient(%+v) succeeded", bad)
		}
	}
}
