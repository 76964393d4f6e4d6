package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// handshake runs a TLS handshake over loopback between a server presenting
// serverCert and a client configured by clientCfg. The server requires and
// verifies a client certificate when clientCAs is non-nil. It returns the
// client-side and server-side handshake errors.
func handshake(t *testing.T, serverCert tls.Certificate, clientCAs *x509.CertPool, clientCfg *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()

	srvCfg := &tls.Config{Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}
	if clientCAs != nil {
		srvCfg.ClientCAs = clientCAs
		srvCfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	srvDone := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			srvDone <- err
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		tc := tls.Server(conn, srvCfg)
		if err := tc.Handshake(); err != nil {
			srvDone <- err
			return
		}
		_, err = io.Copy(tc, io.LimitReader(tc, 4)) // echo "ping"
		srvDone <- err
	}()

	conn, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(conn, clientCfg)
	clientErr = tc.Handshake()
	if clientErr == nil {
		// TLS 1.3 client certificates are verified after the client's
		// handshake completes; a round trip surfaces a rejection.
		if _, err := tc.Write([]byte("ping")); err != nil {
			clientErr = err
		} else {
			buf := make([]byte, 4)
			if _, err := io.ReadFull(tc, buf); err != nil {
				clientErr = err
			} else if string(buf) != "ping" {
				clientErr = errors.New("echo mismatch: " + string(buf))
			}
		}
	}
	conn.Close()
	return clientErr, <-srvDone
}

func TestHandshake(t *testing.T) {
	ca, err := NewAuthority("pgwarden test CA")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ca.Issue("server", "localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cli, err := ca.Issue("alice")
	if err != nil {
		t.Fatal(err)
	}

	for _, name := range []string{"localhost", "127.0.0.1"} {
		t.Run(name, func(t *testing.T) {
			cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: name, MinVersion: tls.VersionTLS12}
			cErr, sErr := handshake(t, srv.Certificate, nil, cfg)
			if cErr != nil || sErr != nil {
				t.Fatalf("handshake: client %v, server %v", cErr, sErr)
			}
		})
	}

	t.Run("mutual", func(t *testing.T) {
		cfg := &tls.Config{
			RootCAs:      ca.Pool(),
			ServerName:   "localhost",
			Certificates: []tls.Certificate{cli.Certificate},
			MinVersion:   tls.VersionTLS12,
		}
		cErr, sErr := handshake(t, srv.Certificate, ca.Pool(), cfg)
		if cErr != nil || sErr != nil {
			t.Fatalf("handshake: client %v, server %v", cErr, sErr)
		}
	})

	t.Run("wrong name", func(t *testing.T) {
		cfg := &tls.Config{RootCAs: ca.Pool(), ServerName: "example.com", MinVersion: tls.VersionTLS12}
		cErr, _ := handshake(t, srv.Certificate, nil, cfg)
		var hostErr x509.HostnameError
		if !errors.As(cErr, &hostErr) {
			t.Fatalf("client error = %v, want x509.HostnameError", cErr)
		}
	})

	t.Run("untrusted", func(t *testing.T) {
		other, err := NewAuthority("other CA")
		if err != nil {
			t.Fatal(err)
		}
		cfg := &tls.Config{RootCAs: other.Pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}
		cErr, _ := handshake(t, srv.Certificate, nil, cfg)
		var uaErr x509.UnknownAuthorityError
		if !errors.As(cErr, &uaErr) {
			t.Fatalf("client error = %v, want x509.UnknownAuthorityError", cErr)
		}
	})
}

func TestLeafFields(t *testing.T) {
	ca, err := NewAuthority("ca")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("svc", "db.example", "::1", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c := leaf.Certificate.Leaf
	if c == nil {
		t.Fatal("Certificate.Leaf not populated")
	}
	if c.Subject.CommonName != "svc" {
		t.Errorf("CN = %q", c.Subject.CommonName)
	}
	if len(c.DNSNames) != 1 || c.DNSNames[0] != "db.example" {
		t.Errorf("DNSNames = %v", c.DNSNames)
	}
	if len(c.IPAddresses) != 2 {
		t.Errorf("IPAddresses = %v", c.IPAddresses)
	}
	if _, err := c.Verify(x509.VerifyOptions{
		Roots:     ca.Pool(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		t.Errorf("verify as client cert: %v", err)
	}
	if !ca.Cert.IsCA || time.Until(ca.Cert.NotAfter) < 29*24*time.Hour || time.Since(ca.Cert.NotBefore) < 59*time.Minute {
		t.Errorf("unexpected CA validity/flags: IsCA=%v %v..%v", ca.Cert.IsCA, ca.Cert.NotBefore, ca.Cert.NotAfter)
	}
	if _, err := ca.Issue("x", ""); err == nil {
		t.Error("Issue with empty host succeeded")
	}
	p := ca.CertPEM()
	p[0] = 'X'
	if blk, _ := pem.Decode(ca.CertPEM()); blk == nil || blk.Type != "CERTIFICATE" {
		t.Error("CertPEM not a CERTIFICATE block or aliased internal state")
	}
}

func TestWriteFiles(t *testing.T) {
	dir := t.TempDir()
	ca, err := NewAuthority("ca")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue("localhost", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	certPath := filepath.Join(dir, "server.crt")
	keyPath := filepath.Join(dir, "server.key")
	caPath := filepath.Join(dir, "ca.crt")

	// Pre-existing files with loose modes must end up with the right ones.
	if err := os.WriteFile(keyPath, []byte("old"), 0o666); err != nil {
		t.Fatal(err)
	}
	if err := leaf.WriteFiles(certPath, keyPath); err != nil {
		t.Fatal(err)
	}
	if err := ca.WriteCertFile(caPath); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]os.FileMode{certPath: 0o644, keyPath: 0o600, caPath: 0o644} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode = %v, want %v", filepath.Base(path), got, want)
		}
	}
	if _, err := tls.LoadX509KeyPair(certPath, keyPath); err != nil {
		t.Errorf("LoadX509KeyPair: %v", err)
	}
	caPEM, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Error("CA file does not parse")
	}
	if _, err := leaf.Certificate.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost"}); err != nil {
		t.Errorf("verify against written CA: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("unexpected leftover files: %v", entries)
	}
	if err := leaf.WriteFiles(filepath.Join(dir, "missing", "c"), keyPath); err == nil {
		t.Error("WriteFiles into missing directory succeeded")
	}
}
