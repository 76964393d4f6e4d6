package testcert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"
)

// Validity window shared by authorities and leaves.
const (
	notBeforeSkew = time.Hour
	validFor      = 30 * 24 * time.Hour
)

// Authority is a throwaway certificate authority (ECDSA P-256).
//
// Cert and Key are the authority's self-signed certificate and private
// key; they are exposed for callers that need them (for example to build a
// custom tls.Config) and must not be modified. An Authority is safe for
// concurrent use once created.
type Authority struct {
	// Cert is the parsed self-signed CA certificate.
	Cert *x509.Certificate
	// Key is the CA's private key (an *ecdsa.PrivateKey).
	Key crypto.Signer

	certPEM []byte
}

// NewAuthority creates a self-signed CA certificate with subject common
// name commonName and a fresh ECDSA P-256 key. The certificate is valid
// from one hour ago to thirty days from now, may sign leaf certificates
// only (path length zero), and is never persisted unless written out with
// [Authority.WriteCertFile].
func NewAuthority(commonName string) (*Authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testcert: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"pgwarden test"}},
		NotBefore:             now.Add(-notBeforeSkew),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("testcert: create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testcert: parse CA certificate: %w", err)
	}
	return &Authority{Cert: cert, Key: key, certPEM: encodeCertPEM(der)}, nil
}

// CertPEM returns the CA certificate as a PEM "CERTIFICATE" block. The
// returned slice is a copy; modifying it does not affect the Authority.
func (a *Authority) CertPEM() []byte {
	return append([]byte(nil), a.certPEM...)
}

// Pool returns a new certificate pool containing only this authority's
// certificate, suitable for tls.Config.RootCAs (to verify servers) or
// tls.Config.ClientCAs (to verify clients). Each call returns a fresh pool.
func (a *Authority) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(a.Cert)
	return pool
}

// WriteCertFile writes the CA certificate PEM to path with mode 0644,
// replacing any existing file atomically. The private key is never written.
func (a *Authority) WriteCertFile(path string) error {
	return writeFileAtomic(path, a.certPEM, 0o644)
}

// newSerial returns a random positive 128-bit certificate serial number.
func newSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("testcert: generate serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}
