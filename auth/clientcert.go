package auth

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pgwarden/pgwarden/session"
)

// ClientCertConfig configures a ClientCert authenticator. The zero value
// takes the SPIFFE ID when the certificate has one, else the subject's
// common name, from any certificate the proxy's TLS configuration
// verified.
type ClientCertConfig struct {
	// Subject chooses what identifies the client: "" (the SPIFFE ID when
	// present, else the common name), "spiffe" (a SPIFFE URI SAN is
	// required) or "cn" (the subject's common name).
	Subject string
	// TrustDomains, when not empty, are the SPIFFE trust domains accepted
	// ("prod.example.com"); a SPIFFE ID from another is refused.
	TrustDomains []string
	// GroupsFromOU makes the subject's organizational units the identity's
	// groups.
	GroupsFromOU bool
}

// ClientCert authenticates clients by the certificate they presented in
// the TLS handshake. It trusts only certificates the proxy's TLS
// configuration verified (tls.Config.ClientAuth set to
// VerifyClientCertIfGiven or RequireAndVerifyClientCert, with ClientCAs):
// a client without a verified certificate is not handled (ErrNotApplicable,
// so that a Chain can try a password next). The identity expires with the
// certificate. A ClientCert is safe for concurrent use.
type ClientCert struct {
	cfg ClientCertConfig
}

// ClientCertIssuer is the Issuer of identities from common names; SPIFFE
// identities have their trust domain ("spiffe://example.org") as Issuer.
const ClientCertIssuer = "x509"

// NewClientCert checks cfg and builds the authenticator.
func NewClientCert(cfg ClientCertConfig) (*ClientCert, error) {
	switch cfg.Subject {
	case "", "spiffe", "cn":
	default:
		return nil, fmt.Errorf(`auth: client certificate subject must be "spiffe" or "cn", not %q`, cfg.Subject)
	}
	for _, d := range cfg.TrustDomains {
		if d == "" || strings.ContainsAny(d, "/:") {
			return nil, fmt.Errorf("auth: invalid SPIFFE trust domain %q", d)
		}
	}
	return &ClientCert{cfg: cfg}, nil
}

// Authenticate maps the verified client certificate to an identity. It
// exchanges nothing with the client.
func (c *ClientCert) Authenticate(ctx context.Context, req *Request) (session.Identity, error) {
	if req.TLS == nil || len(req.TLS.VerifiedChains) == 0 || len(req.TLS.VerifiedChains[0]) == 0 {
		return session.Identity{}, fmt.Errorf("%w: no verified client certificate", ErrNotApplicable)
	}
	chain := req.TLS.VerifiedChains[0]
	leaf := chain[0]
	id := session.Identity{Method: "client-cert", ExpiresAt: leaf.NotAfter}
	for _, ca := range chain[1:] {
		// The earliest expiry in the chain is when the proof ends.
		if ca.NotAfter.Before(id.ExpiresAt) {
			id.ExpiresAt = ca.NotAfter
		}
	}
	spiffe, err := spiffeID(leaf)
	if err != nil {
		return session.Identity{}, fmt.Errorf("%w: %v", ErrInvalidCredentials, err)
	}
	switch {
	case spiffe != "" && c.cfg.Subject != "cn":
		domain := strings.SplitN(strings.TrimPrefix(spiffe, "spiffe://"), "/", 2)[0]
		if len(c.cfg.TrustDomains) > 0 && !slices.Contains(c.cfg.TrustDomains, domain) {
			return session.Identity{}, fmt.Errorf("%w: SPIFFE trust domain %q is not accepted", ErrInvalidCredentials, domain)
		}
		id.Subject, id.Issuer = spiffe, "spiffe://"+domain
	case c.cfg.Subject == "spiffe":
		return session.Identity{}, fmt.Errorf("%w: the client certificate has no SPIFFE ID", ErrInvalidCredentials)
	default:
		id.Subject, id.Issuer = leaf.Subject.CommonName, ClientCertIssuer
		if id.Subject == "" {
			return session.Identity{}, fmt.Errorf("%w: the client certificate has no common name", ErrInvalidCredentials)
		}
	}
	if strings.IndexByte(id.Subject, 0) >= 0 {
		return session.Identity{}, fmt.Errorf("%w: NUL byte in the certificate subject", ErrInvalidCredentials)
	}
	id.Name = leaf.Subject.CommonName
	if len(leaf.EmailAddresses) > 0 {
		id.Email = leaf.EmailAddresses[0]
	}
	if c.cfg.GroupsFromOU {
		id.Groups = slices.Clone(leaf.Subject.OrganizationalUnit)
	}
	id.Claims, _ = session.ClaimsFrom(map[string]any{
		"subject": leaf.Subject.String(), "issuer": leaf.Issuer.String(),
		"serial": leaf.SerialNumber.String(), "not_after": leaf.NotAfter,
	})
	return id, nil
}

// spiffeID returns the certificate's SPIFFE ID, "" when it has none. A
// SPIFFE certificate has exactly one URI SAN.
func spiffeID(cert *x509.Certificate) (string, error) {
	var ids []string
	for _, u := range cert.URIs {
		if u.Scheme == "spiffe" {
			ids = append(ids, u.String())
		}
	}
	switch {
	case len(ids) == 0:
		return "", nil
	case len(ids) > 1 || len(cert.URIs) > 1:
		return "", errors.New("a SPIFFE certificate must have exactly one URI SAN")
	}
	u := cert.URIs[0]
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Port() != "" {
		return "", errors.New("malformed SPIFFE ID")
	}
	return ids[0], nil
}
