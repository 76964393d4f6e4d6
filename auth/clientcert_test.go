package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/auth"
)

// ccCA is a certificate authority for client certificate tests.
type ccCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func ccKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func ccSerial(t testing.TB) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	return n.Add(n, big.NewInt(1))
}

// newCCCA makes a root CA valid until notAfter, or an intermediate signed
// by parent when parent is not nil.
func newCCCA(t testing.TB, cn string, notAfter time.Time, parent *ccCA) *ccCA {
	t.Helper()
	key := ccKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          ccSerial(t),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	signer, signerKey := tmpl, key
	if parent != nil {
		signer, signerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, key.Public(), signerKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &ccCA{cert: cert, key: key}
}

// issue signs a client certificate from tmpl (serial, key usage and
// validity filled in when zero). It returns the parsed certificate and its
// key, or an error when the standard library refuses to parse it.
func (ca *ccCA) issue(t testing.TB, tmpl x509.Certificate) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	t.Helper()
	key := ccKey(t)
	tmpl.SerialNumber = ccSerial(t)
	if tmpl.NotBefore.IsZero() {
		tmpl.NotBefore = time.Now().Add(-time.Hour)
	}
	if tmpl.NotAfter.IsZero() {
		tmpl.NotAfter = time.Now().Add(24 * time.Hour).Truncate(time.Second)
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	if tmpl.ExtKeyUsage == nil {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	return cert, key, err
}

func ccURIs(t testing.TB, raw ...string) []*url.URL {
	t.Helper()
	var out []*url.URL
	for _, r := range raw {
		u, err := url.Parse(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, u)
	}
	return out
}

// verified is the TLS state after the proxy's TLS layer verified chain.
func verified(chain ...*x509.Certificate) *tls.ConnectionState {
	return &tls.ConnectionState{
		HandshakeComplete: true,
		PeerCertificates:  chain[:1],
		VerifiedChains:    [][]*x509.Certificate{chain},
	}
}

func ccAuth(t testing.TB, cfg auth.ClientCertConfig) *auth.ClientCert {
	t.Helper()
	a, err := auth.NewClientCert(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestClientCertIdentities(t *testing.T) {
	root := newCCCA(t, "test root", time.Now().Add(30*24*time.Hour), nil)
	const spiffe = "spiffe://prod.example.com/ns/billing/sa/api"
	cases := []struct {
		name    string
		tmpl    x509.Certificate
		cfg     auth.ClientCertConfig
		subject string // "" means refused with ErrInvalidCredentials
		issuer  string
		groups  []string
	}{
		{name: "CN only", tmpl: x509.Certificate{Subject: pkix.Name{CommonName: "billing-svc"}},
			subject: "billing-svc", issuer: auth.ClientCertIssuer},
		{name: "CN only, cn mode", tmpl: x509.Certificate{Subject: pkix.Name{CommonName: "billing-svc"}}, cfg: auth.ClientCertConfig{Subject: "cn"},
			subject: "billing-svc", issuer: auth.ClientCertIssuer},
		{name: "CN only, spiffe mode", tmpl: x509.Certificate{Subject: pkix.Name{CommonName: "billing-svc"}}, cfg: auth.ClientCertConfig{Subject: "spiffe"}},
		{name: "no CN", tmpl: x509.Certificate{Subject: pkix.Name{Organization: []string{"acme"}}}},
		{name: "no CN, cn mode, with SPIFFE ID", tmpl: x509.Certificate{URIs: ccURIs(t, spiffe)}, cfg: auth.ClientCertConfig{Subject: "cn"}},
		{name: "SPIFFE", tmpl: x509.Certificate{Subject: pkix.Name{CommonName: "api"}, URIs: ccURIs(t, spiffe)},
			subject: spiffe, issuer: "spiffe://prod.example.com"},
		{name: "SPIFFE without CN", tmpl: x509.Certificate{URIs: ccURIs(t, spiffe)},
			subject: spiffe, issuer: "spiffe://prod.example.com"},
		{name: "SPIFFE, spiffe mode", tmpl: x509.Certificate{URIs: ccURIs(t, spiffe)}, cfg: auth.ClientCertConfig{Subject: "spiffe"},
			subject: spiffe, issuer: "spiffe://prod.example.com"},
		{name: "SPIFFE, cn mode", tmpl: x509.Certificate{Subject: pkix.Name{CommonName: "api"}, URIs: ccURIs(t, spiffe)}, cfg: auth.ClientCertConfig{Subject: "cn"},
			subject: "api", issuer: auth.ClientCertIssuer},
		{name: "SPIFFE, trust domain accepted", tmpl: x509.Certificate{URIs: ccURIs(t, spiffe)},
			cfg:     auth.ClientCertConfig{TrustDomains: []string{"staging.example.com", "prod.example.com"}},
			subject: spiffe, issuer: "spiffe://prod.example.com"},
		{name: "SPIFFE, trust domain not accepted", tmpl: x509.Certificate{Subject: pkix.Name{CommonName: "api"}, URIs: ccURIs(t, "spiffe://evil.example/ns/billing/sa/api")},
			cfg: auth.ClientCertConfig{TrustDomains: []string{"prod.example.com"}}},
		{name: "SPIFFE, trust domain is a suffix", tmpl: x509.Certificate{URIs: ccURIs(t, "spiffe://evilprod.example.com/x")},
			cfg: auth.ClientCertConfig{TrustDomains: []string{"prod.example.com"}}},
		{name: "SPIFFE, trust domain in upper case", tmpl: x509.Certificate{URIs: ccURIs(t, "spiffe://PROD.example.com/x")},
			cfg: auth.ClientCertConfig{TrustDomains: []string{"prod.example.com"}}},
		{name: "SPIFFE, any trust domain without a list", tmpl: x509.Certificate{URIs: ccURIs(t, "spiffe://other.example/x")},
			subject: "spiffe://other.example/x", issuer: "spiffe://other.example"},
		{name: "SPIFFE ID and another URI SAN", tmpl: x509.Certificate{Subject: pkix.Name{CommonName: "api"}, URIs: ccURIs(t, spiffe, "https://api.example.com/")}},
		{name: "two SPIFFE IDs", tmpl: x509.Certificate{Subject: pkix.Name{CommonName: "api"}, URIs: ccURIs(t, spiffe, "spiffe://prod.example.com/other")}},
		{name: "non-SPIFFE URI SAN and CN", tmpl: x509.Certificate{Subject: pkix.Name{CommonName: "web"}, URIs: ccURIs(t, "https://web.example.com/")},
			subject: "web", issuer: auth.ClientCertIssuer},
		{name: "SPIFFE with user info", tmpl: x509.Certificate{Subject: pkix.Name{CommonName: "api"}, URIs: ccURIs(t, "spiffe://admin@prod.example.com/x")}},
		{name: "SPIFFE with a query", tmpl: x509.Certificate{Subject: pkix.Name{CommonName: "api"}, URIs: ccURIs(t, "spiffe://prod.example.com/x?role=admin")}},
		{name: "SPIFFE with a fragment", tmpl: x509.Certificate{Subject: pkix.Name{CommonName: "api"}, URIs: ccURIs(t, "spiffe://prod.example.com/x#admin")}},
		{name: "SPIFFE with a port", tmpl: x509.Certificate{Subject: pkix.Name{CommonName: "api"}, URIs: ccURIs(t, "spiffe://prod.example.com:8443/x")}},
		{name: "SPIFFE without trust domain", tmpl: x509.Certificate{Subject: pkix.Name{CommonName: "api"}, URIs: ccURIs(t, "spiffe:///x")}},
		{name: "NUL in CN", tmpl: x509.Certificate{Subject: pkix.Name{CommonName: "admin\x00.evil"}}},
		{name: "groups from OUs", tmpl: x509.Certificate{Subject: pkix.Name{CommonName: "ops-bot", OrganizationalUnit: []string{"ops", "dba"}}},
			cfg: auth.ClientCertConfig{GroupsFromOU: true}, subject: "ops-bot", issuer: auth.ClientCertIssuer, groups: []string{"ops", "dba"}},
		{name: "OUs ignored by default", tmpl: x509.Certificate{Subject: pkix.Name{CommonName: "ops-bot", OrganizationalUnit: []string{"ops"}}},
			subject: "ops-bot", issuer: auth.ClientCertIssuer},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			leaf, _, err := root.issue(t, tc.tmpl)
			if err != nil {
				// The TLS layer could not have verified such a certificate.
				t.Skipf("crypto/x509 does not parse it: %v", err)
			}
			conv := &tokenConv{}
			req := &auth.Request{User: "u", Database: "d", TLS: verified(leaf, root.cert), Client: conv}
			id, err := ccAuth(t, tc.cfg).Authenticate(t.Context(), req)
			if conv.asked != 0 || conv.saslStart != 0 {
				t.Error("ClientCert talked to the client")
			}
			if tc.subject == "" {
				if !errors.Is(err, auth.ErrInvalidCredentials) {
					t.Fatalf("err = %v (identity %+v), want ErrInvalidCredentials", err, id)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id.Subject != tc.subject || id.Issuer != tc.issuer || id.Method != "client-cert" || id.Name != leaf.Subject.CommonName {
				t.Errorf("identity = %+v, want subject %q issuer %q", id, tc.subject, tc.issuer)
			}
			// DER sorts the values of a multi-valued RDN: compare as sets.
			if got, want := slices.Sorted(slices.Values(id.Groups)), slices.Sorted(slices.Values(tc.groups)); !slices.Equal(got, want) {
				t.Errorf("groups = %q, want %q", id.Groups, tc.groups)
			}
			if !id.ExpiresAt.Equal(leaf.NotAfter) {
				t.Errorf("ExpiresAt = %v, want the leaf's %v", id.ExpiresAt, leaf.NotAfter)
			}
			if serial, _ := id.Claims.Lookup("serial"); serial != leaf.SerialNumber.String() {
				t.Errorf("claims serial = %v, want %s", serial, leaf.SerialNumber)
			}
			if iss, _ := id.Claims.Lookup("issuer"); iss != root.cert.Subject.String() {
				t.Errorf("claims issuer = %v", iss)
			}
			if tc.groups != nil {
				// The identity owns its groups.
				ou := leaf.Subject.OrganizationalUnit[0]
				id.Groups[0] = "changed"
				if leaf.Subject.OrganizationalUnit[0] != ou {
					t.Error("identity groups alias the certificate")
				}
			}
		})
	}
}

func TestClientCertEmail(t *testing.T) {
	root := newCCCA(t, "root", time.Now().Add(time.Hour*24*30), nil)
	leaf, _, err := root.issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "bob"}, EmailAddresses: []string{"bob@example.com", "b@example.com"}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := ccAuth(t, auth.ClientCertConfig{}).Authenticate(t.Context(), &auth.Request{TLS: verified(leaf, root.cert), Client: &tokenConv{}})
	if err != nil || id.Email != "bob@example.com" {
		t.Errorf("%+v %v", id, err)
	}
}

// TestClientCertExpiry: the identity expires with the first certificate of
// the chain that does.
func TestClientCertExpiry(t *testing.T) {
	now := time.Now().Truncate(time.Second)
	a := ccAuth(t, auth.ClientCertConfig{})

	shortRoot := newCCCA(t, "short-lived root", now.Add(2*time.Hour), nil)
	leaf, _, err := shortRoot.issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "svc"}, NotAfter: now.Add(48 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	id, err := a.Authenticate(t.Context(), &auth.Request{TLS: verified(leaf, shortRoot.cert), Client: &tokenConv{}})
	if err != nil {
		t.Fatal(err)
	}
	if !id.ExpiresAt.Equal(shortRoot.cert.NotAfter) {
		t.Errorf("ExpiresAt = %v, want the CA's %v (the leaf's is %v)", id.ExpiresAt, shortRoot.cert.NotAfter, leaf.NotAfter)
	}

	root := newCCCA(t, "root", now.Add(30*24*time.Hour), nil)
	inter := newCCCA(t, "intermediate", now.Add(3*time.Hour), root)
	leaf, _, err = inter.issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "svc"}, NotAfter: now.Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	id, err = a.Authenticate(t.Context(), &auth.Request{TLS: verified(leaf, inter.cert, root.cert), Client: &tokenConv{}})
	if err != nil || !id.ExpiresAt.Equal(inter.cert.NotAfter) {
		t.Errorf("ExpiresAt = %v (%v), want the intermediate's %v", id.ExpiresAt, err, inter.cert.NotAfter)
	}
}

func TestClientCertNotApplicable(t *testing.T) {
	root := newCCCA(t, "root", time.Now().Add(24*time.Hour), nil)
	leaf, _, err := root.issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "svc"}})
	if err != nil {
		t.Fatal(err)
	}
	a := ccAuth(t, auth.ClientCertConfig{})
	for name, st := range map[string]*tls.ConnectionState{
		"no TLS":                          nil,
		"TLS without a client cert":       {HandshakeComplete: true},
		"certificate not verified":        {HandshakeComplete: true, PeerCertificates: []*x509.Certificate{leaf, root.cert}},
		"empty verified chain":            {HandshakeComplete: true, PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{}}},
		"no verified chain, empty slices": {HandshakeComplete: true, VerifiedChains: [][]*x509.Certificate{}},
	} {
		conv := &tokenConv{}
		_, err := a.Authenticate(t.Context(), &auth.Request{User: "svc", Database: "d", TLS: st, Client: conv})
		if !errors.Is(err, auth.ErrNotApplicable) || errors.Is(err, auth.ErrInvalidCredentials) {
			t.Errorf("%s: err = %v, want ErrNotApplicable", name, err)
		}
		if conv.asked != 0 {
			t.Errorf("%s: asked for a password", name)
		}
	}
}

func TestNewClientCertRefusesBadConfig(t *testing.T) {
	for _, cfg := range []auth.ClientCertConfig{
		{Subject: "email"},
		{Subject: "SPIFFE"},
		{TrustDomains: []string{""}},
		{TrustDomains: []string{"spiffe://prod.example.com"}},
		{TrustDomains: []string{"prod.example.com/ns"}},
		{TrustDomains: []string{"prod.example.com:443"}},
	} {
		if a, err := auth.NewClientCert(cfg); err == nil || a != nil {
			t.Errorf("NewClientCert(%+v) = %v, %v; want an error", cfg, a, err)
		}
	}
}

// TestClientCertAfterHandshake uses the state of a real mutual TLS
// handshake, as the proxy does.
func TestClientCertAfterHandshake(t *testing.T) {
	root := newCCCA(t, "root", time.Now().Add(24*time.Hour), nil)
	serverCert, serverKey, err := root.issue(t, x509.Certificate{
		Subject: pkix.Name{CommonName: "gateway"}, DNSNames: []string{"gateway.test"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		t.Fatal(err)
	}
	const id = "spiffe://prod.example.com/ns/jobs/sa/etl"
	clientCert, clientKey, err := root.issue(t, x509.Certificate{Subject: pkix.Name{CommonName: "etl"}, URIs: ccURIs(t, id)})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root.cert)

	cConn, sConn := net.Pipe()
	defer cConn.Close()
	defer sConn.Close()
	server := tls.Server(sConn, &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{serverCert.Raw}, PrivateKey: serverKey}},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS13,
	})
	client := tls.Client(cConn, &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{clientCert.Raw}, PrivateKey: clientKey}},
		RootCAs:      pool,
		ServerName:   "gateway.test",
		MinVersion:   tls.VersionTLS13,
	})
	done := make(chan error, 1)
	go func() { done <- client.HandshakeContext(t.Context()) }()
	if err := server.HandshakeContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := server.ConnectionState()
	got, err := ccAuth(t, auth.ClientCertConfig{TrustDomains: []string{"prod.example.com"}}).
		Authenticate(t.Context(), &auth.Request{User: "etl", Database: "d", TLS: &st, Client: &tokenConv{}})
	if err != nil {
		t.Fatal(err)
	}
	// The chain's earliest expiry: the root and the leaf were made in the
	// same second or the one before.
	want := clientCert.NotAfter
	if root.cert.NotAfter.Before(want) {
		want = root.cert.NotAfter
	}
	if got.Subject != id || got.Issuer != "spiffe://prod.example.com" || !got.ExpiresAt.Equal(want) {
		t.Errorf("identity = %+v", got)
	}
}
