package pgtest

import (
	"fmt"
	"path/filepath"

	"github.com/pgwarden/pgwarden/internal/testcert"
)

// setupTLS creates a fresh authority, installs a server certificate for
// localhost and 127.0.0.1 in the data directory (key mode 0600, owned by
// the server identity), writes the CA certificate to CAFile and returns
// the server settings that enable TLS.
func (c *Cluster) setupTLS() ([]string, error) {
	ca, err := testcert.NewAuthority("pgwarden pgtest CA")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	leaf, err := ca.Issue("localhost", "localhost", "127.0.0.1")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	if err := c.writeDataFile("server.crt", leaf.CertPEM, 0o644); err != nil {
		return nil, err
	}
	if err := c.writeDataFile("server.key", leaf.KeyPEM, 0o600); err != nil {
		return nil, err
	}
	caFile := filepath.Join(c.Dir, "ca.crt")
	if err := ca.WriteCertFile(caFile); err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c.CA = ca
	c.CAFile = caFile
	return []string{
		"ssl=on",
		"ssl_cert_file=" + filepath.Join(c.DataDir, "server.crt"),
		"ssl_key_file=" + filepath.Join(c.DataDir, "server.key"),
	}, nil
}
