package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// ClientOptions describes a client certificate for IssueClient.
type ClientOptions struct {
	// CommonName is the subject's common name (may be empty).
	CommonName string
	// OrganizationalUnits are the subject's OUs.
	OrganizationalUnits []string
	// URIs are the URI SANs, for example a SPIFFE ID
	// ("spiffe://example.org/ci/job").
	URIs []string
	// Emails are the e-mail address SANs.
	Emails []string
	// NotBefore and NotAfter override the validity window; zero values
	// mean the window of an authority created now.
	NotBefore, NotAfter time.Time
}

// IssueClient creates a certificate signed by a for TLS client
// authentication only (ExtKeyUsageClientAuth), with a fresh ECDSA P-256
// key. Unlike Issue, it can carry URI SANs (SPIFFE IDs), organizational
// units and e-mail addresses, and has no DNS or IP SANs. A URI that does
// not parse is an error.
func (a *Authority) IssueClient(opts ClientOptions) (*Leaf, error) {
	var uris []*url.URL
	for _, s := range opts.URIs {
		u, err := url.Parse(s)
		if err != nil || u.Scheme == "" {
			return nil, fmt.Errorf("testcert: issue client: invalid URI SAN %q", s)
		}
		uris = append(uris, u)
	}
	if opts.CommonName == "" && len(uris) == 0 && len(opts.Emails) == 0 {
		return nil, errors.New("testcert: issue client: the certificate would name nobody")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testcert: generate client key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	notBefore, notAfter := opts.NotBefore, opts.NotAfter
	if notBefore.IsZero() {
		notBefore = now.Add(-notBeforeSkew)
	}
	if notAfter.IsZero() {
		notAfter = now.Add(validFor)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: opts.CommonName, OrganizationalUnit: opts.OrganizationalUnits},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  uris,
		EmailAddresses:        opts.Emails,
	}
	return a.sign(tmpl, key, "client")
}
