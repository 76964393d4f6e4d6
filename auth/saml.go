package auth

import (
	"bytes"
	"cmp"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/pgwarden/pgwarden/session"
)

// SAMLMethod is the Method of identities that SAML authenticates.
const SAMLMethod = "saml"

// Defaults of SAMLConfig. The attribute names are those crewjam/saml's
// identity provider (and samlidp) emits, as URIs (the X.500/LDAP attribute
// profile); most identity providers can be configured to send them.
const (
	samlDefaultNameAttribute   = "urn:oid:2.5.4.3"                   // cn
	samlDefaultEmailAttribute  = "urn:oid:0.9.2342.19200300.100.1.3" // mail
	samlDefaultGroupsAttribute = "urn:oid:1.3.6.1.4.1.5923.1.1.1.1"  // eduPersonAffiliation
	samlDefaultClockSkew       = time.Minute
	samlMaxClockSkew           = 5 * time.Minute
	samlDefaultMaxSize         = 48 << 10
)

// SAML 2.0 namespaces.
const (
	samlAssertionNS = "urn:oasis:names:tc:SAML:2.0:assertion"
	samlProtocolNS  = "urn:oasis:names:tc:SAML:2.0:protocol"
	samlBearer      = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
)

// SAMLConfig configures a SAML authenticator (NewSAML). IdPMetadata and
// Audience are required; every other field has a safe zero value.
type SAMLConfig struct {
	// IdPMetadata is the identity provider's SAML metadata: an
	// EntityDescriptor with an IDPSSODescriptor, or an EntitiesDescriptor
	// holding exactly one such entity. Its entityID is the only issuer
	// accepted, and only assertions signed with one of the certificates of
	// its IDPSSODescriptor KeyDescriptors whose use is "signing" or unset
	// are accepted. Its own signature and validUntil are not checked: take
	// it from a source you trust. The signing certificate must be within its
	// validity period.
	IdPMetadata []byte
	// Audience is this gateway's SAML entity ID, as registered at the IdP.
	// Every AudienceRestriction of an assertion must name it (and there must
	// be at least one). Required.
	Audience string
	// Recipient is the AssertionConsumerService URL registered for the
	// gateway at the IdP: the Recipient of the assertion's bearer
	// SubjectConfirmationData, and the Destination of a Response that is
	// signed or has one, must equal it. "" means Audience. It must be its
	// own canonical URL form (url.Parse(Recipient).String() == Recipient).
	Recipient string
	// SubjectAttribute names the attribute whose value becomes the
	// identity's Subject; it must then have exactly one non-empty value.
	// "" (the default) takes the Subject's NameID instead; set it when the
	// IdP sends transient NameIDs, which change at every login.
	SubjectAttribute string
	// NameAttribute names the attribute whose first non-empty value becomes
	// the identity's Name. "" means "urn:oid:2.5.4.3" (cn).
	NameAttribute string
	// EmailAttribute names the attribute whose first non-empty value
	// becomes the identity's Email. "" means
	// "urn:oid:0.9.2342.19200300.100.1.3" (mail).
	EmailAttribute string
	// GroupsAttribute names the multi-valued attribute whose non-empty
	// values (without duplicates, in order) become the identity's Groups.
	// "" means "urn:oid:1.3.6.1.4.1.5923.1.1.1.1" (eduPersonAffiliation,
	// where crewjam/saml's IdP puts a user's groups).
	//
	// Attributes are matched by their Name (a URI for most IdPs), never by
	// their FriendlyName.
	GroupsAttribute string
	// ClockSkew is how far the IdP's clock may be from the gateway's when
	// IssueInstant, NotBefore and NotOnOrAfter are checked. 0 means 1
	// minute; it must not be negative or exceed 5 minutes. crewjam/saml
	// applies its own package-wide saml.MaxClockSkew (3 minutes unless
	// changed) to the same checks first, so a ClockSkew above it has no
	// further effect.
	ClockSkew time.Duration
	// MaxSize is the largest decoded assertion or response accepted, in
	// bytes; larger input is refused before it is parsed. 0 means 48 KiB
	// (whose base64 form fills the 64 KiB a client's authentication message
	// may carry); it must not be negative.
	MaxSize int
	// Now returns the current time; nil means time.Now. For tests.
	Now func() time.Time
}

// SAML authenticates clients that present a signed SAML 2.0 assertion,
// base64-encoded, as their password (so only over TLS, unless the host
// allowed cleartext passwords without it). The startup packet's user name
// plays no part: the identity comes from the assertion alone.
//
// The password is standard base64 (RFC 4648 §4, padded; line breaks and
// surrounding white space are ignored) of either a samlp:Response carrying
// the assertion (as an IdP posts it to an AssertionConsumerService), or a
// bare saml:Assertion. It must be a single XML document without DOCTYPE,
// NUL bytes or encrypted elements (EncryptedAssertion, EncryptedID,
// EncryptedAttribute: the gateway holds no decryption key).
//
// The XML signature is verified by crewjam/saml's
// ServiceProvider.ParseXMLResponse, which uses goxmldsig; a bare assertion
// is first put in an unsigned Response built by the gateway. The assertion
// must be signed by the IdP (or sit in a Response so signed) with a
// certificate from its metadata, and everything the identity is made of is
// read from what that signature covers, so an unsigned or moved element
// (signature wrapping) cannot contribute. SHA-1 signatures are refused.
//
// The assertion must also: be issued by the IdP's entity ID; have an
// AudienceRestriction naming Audience; be within its Conditions' NotBefore
// and NotOnOrAfter, allowing ClockSkew; have an AuthnStatement whose
// SessionNotOnOrAfter, if any, has not passed; have a bearer
// SubjectConfirmation for Recipient, not expired and answering no
// AuthnRequest (InResponseTo empty: the gateway makes none), which is
// IdP-initiated SSO; have a non-empty subject; have no condition
// crewjam/saml does not understand; and have been issued at most
// saml.MaxIssueDelay (90 seconds unless changed) ago: it is meant to be
// presented as soon as it is issued. An assertion is not remembered, so the
// same one is accepted again until then.
//
// The identity has Subject (the NameID, or SubjectAttribute), Issuer (the
// IdP's entity ID), Name, Email and Groups (from the configured
// attributes), Method SAMLMethod, no Chain, and ExpiresAt: the earliest
// SessionNotOnOrAfter of the AuthnStatements when there is one (the end of
// the IdP's session), otherwise the Conditions' NotOnOrAfter (the end of
// the assertion's validity: 90 seconds after issue with crewjam/saml's
// IdP), or zero when there is neither. Its Claims are a
// JSON object mapping each attribute Name to the list of its values (as
// strings), plus "NameID" and "SessionIndex" (strings) when present, which
// take precedence over attributes of those names.
//
// Every refusal is an error wrapping ErrInvalidCredentials whose text says
// why without quoting the password. A SAML is safe for concurrent use.
type SAML struct {
	sp         saml.ServiceProvider // copied per call, with that call's clock
	entityID   string
	recipient  string
	subject    string
	nameAttr   string
	emailAttr  string
	groupsAttr string
	skew       time.Duration
	maxSize    int
	now        func() time.Time
}

// NewSAML builds a SAML authenticator. It fails on missing, malformed or
// unusable IdP metadata (no entity ID, no IDPSSODescriptor, no signing
// certificate, a certificate that does not parse), an empty Audience, a
// Recipient that is not a canonical URL, or a ClockSkew or MaxSize out of
// range.
func NewSAML(cfg SAMLConfig) (*SAML, error) {
	if cfg.Audience == "" || strings.ContainsRune(cfg.Audience, 0) {
		return nil, errors.New("auth: saml: Audience (the gateway's SAML entity ID) is required and must not contain NUL")
	}
	if len(cfg.IdPMetadata) == 0 {
		return nil, errors.New("auth: saml: IdPMetadata is required")
	}
	entity, err := samlsp.ParseMetadata(cfg.IdPMetadata)
	if err != nil {
		return nil, fmt.Errorf("auth: saml: invalid IdP metadata: %w", err)
	}
	if entity.EntityID == "" {
		return nil, errors.New("auth: saml: IdP metadata has no entityID")
	}
	if len(entity.IDPSSODescriptors) == 0 {
		return nil, fmt.Errorf("auth: saml: IdP metadata for %q has no IDPSSODescriptor", entity.EntityID)
	}
	n, err := samlSigningCerts(entity)
	if err != nil {
		return nil, fmt.Errorf("auth: saml: IdP metadata for %q: %w", entity.EntityID, err)
	}
	if n == 0 {
		return nil, fmt.Errorf("auth: saml: IdP metadata for %q has no signing certificate", entity.EntityID)
	}

	recipient := cfg.Recipient
	if recipient == "" {
		recipient = cfg.Audience
	}
	acs, err := url.Parse(recipient)
	if err != nil || acs.String() != recipient {
		return nil, fmt.Errorf("auth: saml: Recipient %q is not a canonical URL", recipient)
	}

	skew := cfg.ClockSkew
	switch {
	case skew == 0:
		skew = samlDefaultClockSkew
	case skew < 0 || skew > samlMaxClockSkew:
		return nil, fmt.Errorf("auth: saml: ClockSkew %s is out of range (0 to %s)", skew, samlMaxClockSkew)
	}
	maxSize := cfg.MaxSize
	switch {
	case maxSize == 0:
		maxSize = samlDefaultMaxSize
	case maxSize < 0:
		return nil, fmt.Errorf("auth: saml: MaxSize %d is negative", maxSize)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}

	return &SAML{
		sp: saml.ServiceProvider{
			EntityID:             cfg.Audience,
			AcsURL:               *acs,
			IDPMetadata:          entity,
			AllowIDPInitiated:    true,
			RejectSHA1Signatures: true,
			// An Indeterminate assertion MUST be rejected (saml-core §2.5.1.1).
			RejectUnknownConditions: true,
		},
		entityID:   entity.EntityID,
		recipient:  recipient,
		subject:    cfg.SubjectAttribute,
		nameAttr:   cmp.Or(cfg.NameAttribute, samlDefaultNameAttribute),
		emailAttr:  cmp.Or(cfg.EmailAttribute, samlDefaultEmailAttribute),
		groupsAttr: cmp.Or(cfg.GroupsAttribute, samlDefaultGroupsAttribute),
		skew:       skew,
		maxSize:    maxSize,
		now:        now,
	}, nil
}

// samlSigningCerts counts the signing certificates of the IdP's
// IDPSSODescriptors as crewjam/saml selects them (KeyDescriptor use
// "signing" or unset), failing on one that does not parse.
func samlSigningCerts(entity *saml.EntityDescriptor) (int, error) {
	n := 0
	for _, d := range entity.IDPSSODescriptors {
		for _, kd := range d.KeyDescriptors {
			if kd.Use != "" && kd.Use != "signing" {
				continue
			}
			for _, c := range kd.KeyInfo.X509Data.X509Certificates {
				der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(c.Data), ""))
				if err != nil {
					return 0, fmt.Errorf("signing certificate is not valid base64: %w", err)
				}
				if _, err := x509.ParseCertificate(der); err != nil {
					return 0, fmt.Errorf("signing certificate: %w", err)
				}
				n++
			}
		}
	}
	return n, nil
}

// Authenticate asks the client for its password, which must be a signed
// SAML assertion or response (see SAML), and returns the identity it
// asserts. A refused assertion is an error wrapping ErrInvalidCredentials;
// the Conversation's errors (ErrCleartextRefused without TLS) are returned
// as they are.
func (s *SAML) Authenticate(ctx context.Context, req *Request) (session.Identity, error) {
	secret, err := req.Client.CleartextPassword(ctx)
	if err != nil {
		return session.Identity{}, err
	}
	return s.verify(secret.Reveal(), s.now())
}

// samlRefused is a refusal whose reason is safe to log: it never quotes the
// presented text.
func samlRefused(format string, args ...any) error {
	return fmt.Errorf("%w: saml: %s", ErrInvalidCredentials, fmt.Sprintf(format, args...))
}

// verify checks text, a base64 assertion or response, at now and returns
// the identity it asserts.
func (s *SAML) verify(text string, now time.Time) (session.Identity, error) {
	text = strings.TrimSpace(text)
	switch {
	case text == "":
		return session.Identity{}, samlRefused("empty password, a base64 SAML assertion was expected")
	case strings.IndexByte(text, 0) >= 0:
		return session.Identity{}, samlRefused("password contains a NUL byte")
	case len(text) > 2*base64.StdEncoding.EncodedLen(s.maxSize):
		return session.Identity{}, samlRefused("password is larger than %d bytes of base64", 2*base64.StdEncoding.EncodedLen(s.maxSize))
	}
	raw, err := base64.StdEncoding.DecodeString(text)
	switch {
	case err != nil:
		return session.Identity{}, samlRefused("password is not valid base64")
	case len(raw) > s.maxSize:
		return session.Identity{}, samlRefused("assertion is larger than %d bytes", s.maxSize)
	case bytes.IndexByte(raw, 0) >= 0:
		return session.Identity{}, samlRefused("assertion contains a NUL byte")
	}

	isAssertion, rootStart, err := samlScan(raw)
	if err != nil {
		return session.Identity{}, samlRefused("%v", err)
	}
	doc := raw
	if isAssertion {
		doc = samlWrap(raw[rootStart:], now)
	}

	// The ServiceProvider is copied so that each call has its own clock.
	sp := s.sp
	sp.Clock = dsig.NewFakeClockAt(now)
	assertion, err := sp.ParseXMLResponse(doc, nil, sp.AcsURL)
	if err != nil {
		return session.Identity{}, samlRefused("%s", samlReason(err))
	}
	if err := s.check(assertion, now); err != nil {
		return session.Identity{}, err
	}
	return s.identity(assertion)
}

// samlScan checks that raw is one XML document without DOCTYPE or encrypted
// SAML elements whose root is a samlp:Response or a saml:Assertion, and
// reports which, with the offset at which the root element starts.
// crewjam/saml parses the document again, and decides alone what is signed.
func samlScan(raw []byte) (isAssertion bool, rootStart int, err error) {
	dec := xml.NewDecoder(bytes.NewReader(raw))
	depth, roots := 0, 0
	for {
		offset := dec.InputOffset()
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return false, 0, errors.New("assertion is not well-formed XML")
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Space == samlAssertionNS {
				switch t.Name.Local {
				case "EncryptedAssertion", "EncryptedID", "EncryptedAttribute":
					return false, 0, errors.New("encrypted SAML elements are not supported")
				}
			}
			if depth == 0 {
				roots++
				if roots > 1 {
					return false, 0, errors.New("XML has more than one root element")
				}
				rootStart = int(offset)
				switch {
				case t.Name.Space == samlAssertionNS && t.Name.Local == "Assertion":
					isAssertion = true
				case t.Name.Space == samlProtocolNS && t.Name.Local == "Response":
				default:
					return false, 0, errors.New("XML root is neither a saml:Assertion nor a samlp:Response")
				}
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return false, 0, errors.New("XML has text outside its root element")
			}
		case xml.Directive:
			return false, 0, errors.New("XML directives (DOCTYPE) are not allowed")
		}
	}
	if roots == 0 {
		return false, 0, errors.New("XML has no root element")
	}
	return isAssertion, rootStart, nil
}

// samlWrap puts a bare assertion (from its root element on) in an unsigned,
// successful samlp:Response issued at now, which crewjam/saml only accepts
// if it holds exactly one assertion, itself validly signed.
func samlWrap(assertion []byte, now time.Time) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<samlp:Response xmlns:samlp=%q ID="_pgwarden-bare-assertion" Version="2.0" IssueInstant=%q>`+
		`<samlp:Status><samlp:StatusCode Value=%q/></samlp:Status>`,
		samlProtocolNS, now.UTC().Format(time.RFC3339Nano), saml.StatusSuccess)
	b.Write(assertion)
	b.WriteString(`</samlp:Response>`)
	return b.Bytes()
}

// samlReasons name the refusals crewjam/saml classifies, most specific
// first.
var samlReasons = []struct {
	kind error
	text string
}{
	{saml.ErrUntrustedCertificate, "signed with a certificate that is not in the IdP metadata"},
	{saml.ErrCertificateNotValidNow, "the IdP's signing certificate is expired or not yet valid"},
	{saml.ErrInvalidSignature, "signature missing or not valid"},
	{saml.ErrIssuerMismatch, "issuer is not the IdP"},
	{saml.ErrAudienceMismatch, "audience restriction does not name this gateway"},
	{saml.ErrDestinationMismatch, "recipient or destination is not this gateway"},
	{saml.ErrRequestIDMismatch, "assertion answers an authentication request (only IdP-initiated assertions are accepted)"},
	{saml.ErrExpired, "expired"},
	{saml.ErrNotYetValid, "not yet valid"},
	{saml.ErrMissingElement, "a required element is missing"},
	{saml.ErrUnsupported, "unsupported content"},
	{saml.ErrDecryptionFailed, "cannot decrypt"},
	{saml.ErrMalformedMessage, "malformed"},
}

// samlReason describes a crewjam/saml refusal for the log: its class, and
// its detail shortened and quoted (the detail names elements and times, not
// the document).
func samlReason(err error) string {
	var invalid *saml.InvalidResponseError
	if errors.As(err, &invalid) && invalid.PrivateErr != nil {
		err = invalid.PrivateErr
	}
	var status saml.ErrBadStatus
	if errors.As(err, &status) {
		return "the IdP's response status is not Success"
	}
	text := "response refused"
	if strings.Contains(err.Error(), "signature element not present") {
		// crewjam/saml does not export this one.
		text = "assertion is not signed"
	}
	for _, r := range samlReasons {
		if errors.Is(err, r.kind) {
			text = r.text
			break
		}
	}
	return fmt.Sprintf("%s (%.160q)", text, err.Error())
}

// check applies the gateway's own time and subject checks to an assertion
// crewjam/saml accepted: with ClockSkew, which may be stricter than
// saml.MaxClockSkew.
func (s *SAML) check(a *saml.Assertion, now time.Time) error {
	late := now.Add(s.skew) // the latest the IdP's clock may read now
	if a.Issuer.Value != s.entityID {
		return samlRefused("issuer is not the IdP")
	}
	if a.Subject == nil || a.Subject.NameID == nil {
		return samlRefused("assertion has no NameID")
	}
	if a.IssueInstant.After(late) {
		return samlRefused("assertion is issued in the future")
	}
	c := a.Conditions
	if c == nil {
		return samlRefused("assertion has no Conditions")
	}
	if c.NotBefore.After(late) {
		return samlRefused("assertion is not yet valid")
	}
	if !c.NotOnOrAfter.IsZero() && !now.Before(c.NotOnOrAfter.Add(s.skew)) {
		return samlRefused("assertion expired")
	}
	confirmed := false
	for _, sc := range a.Subject.SubjectConfirmations {
		d := sc.SubjectConfirmationData
		if sc.Method != samlBearer || d == nil || d.Recipient != s.recipient || d.InResponseTo != "" {
			continue
		}
		if !d.NotBefore.After(late) && now.Before(d.NotOnOrAfter.Add(s.skew)) {
			confirmed = true
			break
		}
	}
	if !confirmed {
		return samlRefused("no bearer subject confirmation for this gateway is valid now")
	}
	if end, ok := samlSessionEnd(a); ok && !now.Before(end) {
		return samlRefused("the IdP session ended (SessionNotOnOrAfter)")
	}
	return nil
}

// samlSessionEnd returns the earliest SessionNotOnOrAfter of a's
// AuthnStatements, if any has one.
func samlSessionEnd(a *saml.Assertion) (time.Time, bool) {
	var end time.Time
	found := false
	for _, st := range a.AuthnStatements {
		if st.SessionNotOnOrAfter != nil && (!found || st.SessionNotOnOrAfter.Before(end)) {
			end, found = *st.SessionNotOnOrAfter, true
		}
	}
	return end, found
}

// identity builds the identity a verified assertion asserts.
func (s *SAML) identity(a *saml.Assertion) (session.Identity, error) {
	attrs := map[string][]string{}
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			if at.Name == "" {
				continue
			}
			vals := attrs[at.Name]
			if vals == nil {
				vals = []string{}
			}
			for _, v := range at.Values {
				switch {
				case v.Nil:
				case v.NameID != nil:
					vals = append(vals, v.NameID.Value)
				default:
					vals = append(vals, v.Value)
				}
			}
			attrs[at.Name] = vals
		}
	}
	first := func(name string) string {
		for _, v := range attrs[name] {
			if v != "" {
				return v
			}
		}
		return ""
	}

	nameID := a.Subject.NameID.Value
	subject := nameID
	if s.subject != "" {
		vals := attrs[s.subject]
		if len(vals) != 1 {
			return session.Identity{}, samlRefused("subject attribute %q does not have exactly one value", s.subject)
		}
		subject = vals[0]
	}
	if strings.TrimSpace(subject) == "" {
		return session.Identity{}, samlRefused("assertion has an empty subject")
	}

	var groups []string
	for _, g := range attrs[s.groupsAttr] {
		if g != "" && !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}

	claims := make(map[string]any, len(attrs)+2)
	for name, vals := range attrs {
		claims[name] = vals
	}
	if nameID != "" {
		claims["NameID"] = nameID
	}
	for _, st := range a.AuthnStatements {
		if st.SessionIndex != "" {
			claims["SessionIndex"] = st.SessionIndex
			break
		}
	}
	c, err := session.ClaimsFrom(claims)
	if err != nil {
		return session.Identity{}, fmt.Errorf("auth: saml: encoding claims: %w", err)
	}

	expires, ok := samlSessionEnd(a)
	if !ok {
		expires = a.Conditions.NotOnOrAfter
	}
	return session.Identity{
		Subject:   subject,
		Issuer:    s.entityID,
		Name:      first(s.nameAttr),
		Email:     first(s.emailAttr),
		Groups:    groups,
		Method:    SAMLMethod,
		ExpiresAt: expires,
		Claims:    c,
	}, nil
}
