package main

import (
	"net/url"
	"time"

	"github.com/pgwarden/pgwarden/auth"
)

// validateOIDC checks auth.oidc. The authenticator's own checks run when
// the proxy is built; these name the key at fault.
func (c *config) validateOIDC(v *validator) {
	o := c.Auth.OIDC
	if o == nil {
		return
	}
	p := keyPath("auth.oidc")
	u, err := url.Parse(string(o.Issuer))
	switch {
	case o.Issuer == "":
		v.fail(p.key("issuer"), "is required")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		v.fail(p.key("issuer"), "must be an https URL")
	case u.Scheme == "http" && !isLocalAddress(u.Host) && !isLocalAddress(u.Hostname()):
		v.fail(p.key("issuer"), "must be https (http is only accepted on loopback): keys fetched in clear can be replaced")
	}
	if o.Audience == "" {
		v.fail(p.key("audience"), "is required: the name the identity provider gives this gateway")
	}
	for i, a := range o.Algorithms {
		if _, err := auth.NewOIDC(auth.OIDCConfig{Issuer: "https://check", Audience: "check", Algorithms: []string{string(a)}}); err != nil {
			v.fail(p.key("algorithms").index(i), "is not accepted (asymmetric algorithms only: RS256, PS256, ES256, EdDSA, ...)")
		}
	}
	if d := time.Duration(o.ClockSkew); d < 0 || d > auth.MaxClockSkew {
		v.fail(p.key("clock_skew"), "must be between 0 and %s", auth.MaxClockSkew)
	}
	if o.ExpiryGrace < 0 {
		v.fail(p.key("expiry_grace"), "cannot be negative")
	} else if o.ExpiryGrace > 0 {
		v.warn(p.key("expiry_grace"), "sessions outlive their tokens by this much")
	}
	if o.MaxTokenSize < 0 {
		v.fail(p.key("max_token_size"), "cannot be negative")
	}
	switch o.OAuthBearer {
	case "", "auto", "always", "never":
	default:
		v.fail(p.key("oauth_bearer"), "must be auto, always or never")
	}
	if in := o.Introspection; in != nil {
		ip := p.key("introspection")
		if in.ClientID == "" {
			v.fail(ip.key("client_id"), "is required")
		}
		if in.URL != "" {
			if u, err := url.Parse(string(in.URL)); err != nil || u.Scheme != "https" && !(u.Scheme == "http" && isLocalAddress(u.Hostname())) {
				v.fail(ip.key("url"), "must be an https URL (http only on loopback)")
			}
		}
		if in.Interval < 0 {
			v.fail(ip.key("interval"), "cannot be negative")
		}
	}
}

// validateClientCerts checks auth.client_certs.
func (c *config) validateClientCerts(v *validator) {
	cc := c.Auth.ClientCerts
	if cc == nil {
		return
	}
	p := keyPath("auth.client_certs")
	if c.TLS == nil {
		v.fail(p, "needs the tls section: client certificates are part of the TLS handshake")
	}
	if cc.CA == "" {
		v.fail(p.key("ca"), "is required: the authorities that issue client certificates")
	}
	switch cc.Subject {
	case "", "spiffe", "cn":
	default:
		v.fail(p.key("subject"), "must be spiffe or cn (or absent: the SPIFFE ID when present, else the common name)")
	}
	checkNames(v, p.key("trust_domains"), cc.TrustDomains)
}

// validateSAML checks auth.saml.
func (c *config) validateSAML(v *validator) {
	s := c.Auth.SAML
	if s == nil {
		return
	}
	p := keyPath("auth.saml")
	if s.IdPMetadata == "" {
		v.fail(p.key("idp_metadata"), "is required: the identity provider's metadata XML file")
	}
	if s.Audience == "" {
		v.fail(p.key("audience"), "is required: this gateway's SAML entity id")
	}
	if d := time.Duration(s.ClockSkew); d < 0 || d > 5*time.Minute {
		v.fail(p.key("clock_skew"), "must be between 0 and 5m")
	}
}
