package testcert

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"net"
	"time"
)

// Leaf is a certificate issued by an [Authority] together with its private
// key, in both PEM and ready-to-use crypto/tls form.
type Leaf struct {
	// CertPEM is the leaf certificate as a PEM "CERTIFICATE" block (the
	// issuing CA certificate is not included).
	CertPEM []byte
	// KeyPEM is the leaf's private key as a PEM "PRIVATE KEY" (PKCS #8)
	// block, unencrypted.
	KeyPEM []byte
	// Certificate holds the same certificate and key for tls.Config;
	// its Leaf field is populated with the parsed certificate.
	Certificate tls.Certificate
}

// Issue creates a leaf certificate signed by a, usable for both server and
// client auth.
//
// hosts are DNS names or IP addresses (anything net.ParseIP accepts is put
// in the IP SANs, everything else in the DNS SANs); commonName is the
// subject CN, which is also what PostgreSQL compares to the user name in
// clientcert=verify-full. The leaf has a fresh ECDSA P-256 key and the same
// validity window as an authority created now. An empty host is an error.
func (a *Authority) Issue(commonName string, hosts ...string) (*Leaf, error) {
	var dnsNames []string
	var ips []net.IP
	for _, h := range hosts {
		if h == "" {
			return nil, errors.New("testcert: issue: empty host name")
		}
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else {
			dnsNames = append(dnsNames, h)
		}
	}

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("testcert: generate leaf key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-notBeforeSkew),
		NotAfter:              now.Add(validFor),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              dnsNames,
		IPAddresses:           ips,
	}
	return a.sign(tmpl, key, "leaf")
}

// sign has the authority sign tmpl for key's public half and returns the
// certificate with its key; what names the certificate in errors.
func (a *Authority) sign(tmpl *x509.Certificate, key crypto.Signer, what string) (*Leaf, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.Cert, key.Public(), a.Key)
	if err != nil {
		return nil, fmt.Errorf("testcert: sign %s certificate: %w", what, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("testcert: parse %s certificate: %w", what, err)
	}
	keyPEM, err := encodeKeyPEM(key)
	if err != nil {
		return nil, err
	}
	return &Leaf{
		CertPEM: encodeCertPEM(der),
		KeyPEM:  keyPEM,
		Certificate: tls.Certificate{
			Certificate: [][]byte{der},
			PrivateKey:  key,
			Leaf:        cert,
		},
	}, nil
}

// WriteFiles writes the PEM files; the key with mode 0600.
//
// The certificate goes to certPath with mode 0644 and the private key to
// keyPath with mode 0600; existing files are replaced atomically and end up
// with exactly those modes. The directories must already exist.
func (l *Leaf) WriteFiles(certPath, keyPath string) error {
	if err := writeFileAtomic(certPath, l.CertPEM, 0o644); err != nil {
		return err
	}
	return writeFileAtomic(keyPath, l.KeyPEM, 0o600)
}
