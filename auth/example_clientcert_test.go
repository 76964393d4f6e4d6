package auth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log"
	"net/url"
	"time"

	"github.com/pgwarden/pgwarden/auth"
)

// The identity of a client whose certificate the proxy's TLS layer
// verified (Proxy.TLS with ClientAuth and ClientCAs): its SPIFFE ID,
// vouched for by its trust domain. A client without a verified
// certificate is not ClientCert's to judge.
func ExampleNewClientCert() {
	a, err := auth.NewClientCert(auth.ClientCertConfig{
		TrustDomains: []string{"prod.example.com"},
		GroupsFromOU: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	// What the TLS handshake verified.
	spiffe, _ := url.Parse("spiffe://prod.example.com/ns/billing/sa/api")
	leaf := &x509.Certificate{
		Subject:  pkix.Name{CommonName: "billing-api", OrganizationalUnit: []string{"billing"}},
		URIs:     []*url.URL{spiffe},
		NotAfter: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	state := &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf}}}

	id, err := a.Authenticate(context.Background(), &auth.Request{User: "billing", Database: "app", TLS: state})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(id.Subject)
	fmt.Println(id.Issuer, id.Groups, id.Method, id.ExpiresAt.Format(time.DateOnly))

	_, err = a.Authenticate(context.Background(), &auth.Request{User: "billing", Database: "app"})
	fmt.Println(errors.Is(err, auth.ErrNotApplicable))
	// Output:
	// spiffe://prod.example.com/ns/billing/sa/api
	// spiffe://prod.example.com [billing] client-cert 2030-01-01
	// true
}
