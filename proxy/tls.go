package proxy

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"hash"
)

// serverTLS returns the TLS configuration for one client connection, and
// arranges for *endpoint to receive the tls-server-end-point channel binding
// data (RFC 5929) of the certificate the handshake presents. When the
// certificate cannot be known (several static certificates chosen by the
// TLS stack), *endpoint stays nil and SCRAM-SHA-256-PLUS is not offered.
func (p *Proxy) serverTLS(endpoint *[]byte) *tls.Config {
	cfg := p.TLS
	switch {
	case cfg.GetCertificate == nil && cfg.GetConfigForClient == nil && len(cfg.Certificates) == 1:
		p.tlsOnce.Do(func() { p.tlsLeaf = endPointHash(&cfg.Certificates[0]) })
		*endpoint = p.tlsLeaf
		return cfg
	case cfg.GetCertificate != nil && cfg.GetConfigForClient == nil:
		c := cfg.Clone()
		get := cfg.GetCertificate
		c.GetCertificate = func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
			cert, err := get(h)
			if err == nil && cert != nil {
				*endpoint = endPointHash(cert)
			}
			return cert, err
		}
		return c
	}
	return cfg
}

// endPointHash hashes a certificate as RFC 5929 says: with its signature's
// hash, SHA-256 for MD5 and SHA-1. It returns nil for signature algorithms
// without one (Ed25519), as PostgreSQL does.
func endPointHash(cert *tls.Certificate) []byte {
	leaf := cert.Leaf
	if leaf == nil {
		if len(cert.Certificate) == 0 {
			return nil
		}
		var err error
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil
		}
	}
	var h hash.Hash
	switch leaf.SignatureAlgorithm {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1,
		x509.SHA256WithRSA, x509.SHA256WithRSAPSS, x509.ECDSAWithSHA256:
		h = sha256.New()
	case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
		h = sha512.New384()
	case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
		h = sha512.New()
	default:
		return nil
	}
	h.Write(leaf.Raw)
	return h.Sum(nil)
}
