package proxy_test

import (
	"crypto/tls"

	"github.com/pgwarden/pgwarden/internal/testcert"
)

func serverTLS(leaf *testcert.Leaf) *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{leaf.Certificate}, MinVersion: tls.VersionTLS12}
}
