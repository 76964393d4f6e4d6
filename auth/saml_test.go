package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/session"
)

const (
	samlIdPEntityID  = "https://idp.example.com/saml/metadata"
	samlAudience     = "https://gateway.example.com/saml"
	samlRecipient    = "https://gateway.example.com/saml/acs"
	samlGroupsOID    = "urn:oid:1.3.6.1.4.1.5923.1.1.1.1"
	samlUIDOID       = "urn:oid:0.9.2342.19200300.100.1.1"
	samlSessionIndex = "session-index-1"
)

// samlIssued is when the test IdP issues its assertions.
var samlIssued = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// samlKeyPair is an IdP signing key and its self-signed certificate.
type samlKeyPair struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// samlKeys are generated once: the trusted IdP's and another one.
var samlKeys = sync.OnceValues(func() ([2]samlKeyPair, error) {
	var pairs [2]samlKeyPair
	for i := range pairs {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return pairs, err
		}
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(int64(i + 1)),
			Subject:               pkix.Name{CommonName: "test idp"},
			NotBefore:             samlIssued.AddDate(-1, 0, 0),
			NotAfter:              samlIssued.AddDate(10, 0, 0),
			KeyUsage:              x509.KeyUsageDigitalSignature,
			BasicConstraintsValid: true,
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		if err != nil {
			return pairs, err
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			return pairs, err
		}
		pairs[i] = samlKeyPair{key: key, cert: cert}
	}
	return pairs, nil
})

// samlSPs knows the service providers the test IdP issues assertions for.
type samlSPs map[string]*saml.EntityDescriptor

func (p samlSPs) GetServiceProvider(_ *http.Request, id string) (*saml.EntityDescriptor, error) {
	if d, ok := p[id]; ok {
		return d, nil
	}
	return nil, os.ErrNotExist
}

// newSAMLIdP returns a crewjam/saml IdP with entity ID entityID, signing
// with key pair keyIndex of samlKeys, that knows the gateway (samlAudience)
// and another service provider.
func newSAMLIdP(t testing.TB, entityID string, keyIndex int) *saml.IdentityProvider {
	t.Helper()
	pairs, err := samlKeys()
	if err != nil {
		t.Fatal(err)
	}
	mustURL := func(s string) url.URL {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return *u
	}
	sps := samlSPs{}
	for _, id := range []string{samlAudience, "https://other.example.com/saml"} {
		sp := saml.ServiceProvider{EntityID: id, AcsURL: mustURL(samlRecipient), AssertionConsumerServiceBindings: []string{saml.HTTPPostBinding}}
		sps[id] = sp.Metadata()
	}
	return &saml.IdentityProvider{
		Key:                     pairs[keyIndex].key,
		Certificate:             pairs[keyIndex].cert,
		MetadataURL:             mustURL(entityID),
		SSOURL:                  mustURL(strings.TrimSuffix(entityID, "/metadata") + "/sso"),
		ServiceProviderProvider: sps,
		SignatureMethod:         dsig.RSASHA256SignatureMethod,
		Clock:                   dsig.NewFakeClockAt(samlIssued),
	}
}

// samlMetadata returns the IdP's metadata XML.
func samlMetadata(t testing.TB, idp *saml.IdentityProvider) []byte {
	t.Helper()
	b, err := xml.Marshal(idp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// samlAlice is the test user's IdP session.
func samlAlice() *saml.Session {
	return &saml.Session{
		ID:             "s1",
		CreateTime:     samlIssued.Add(-time.Minute),
		ExpireTime:     samlIssued.Add(8 * time.Hour),
		Index:          samlSessionIndex,
		NameID:         "alice@example.com",
		NameIDFormat:   string(saml.EmailAddressNameIDFormat),
		UserName:       "alice",
		UserEmail:      "alice@example.com",
		UserCommonName: "Alice Liddell",
		Groups:         []string{"analysts", "ops"},
	}
}

// samlIssue has idp make an IdP-initiated assertion for sp about sess
// (changed by mutate before it is signed) and returns the signed Response
// carrying it, the signed assertion alone, and the assertion unsigned.
func samlIssue(t testing.TB, idp *saml.IdentityProvider, sp string, sess *saml.Session, mutate func(*saml.Assertion)) (response, assertion, unsigned []byte) {
	t.Helper()
	req, err := idp.NewIdpInitiatedRequest(httptest.NewRequest("GET", "https://idp.example.com/login", nil), sp, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := (saml.DefaultAssertionMaker{}).MakeAssertion(req, sess); err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(req.Assertion)
	}
	unsigned = samlElementBytes(t, req.Assertion.Element())
	if err := req.MakeAssertionEl(); err != nil {
		t.Fatal(err)
	}
	assertion = samlElementBytes(t, req.AssertionEl.Copy())
	if err := req.MakeResponse(); err != nil {
		t.Fatal(err)
	}
	response = samlElementBytes(t, req.ResponseEl)
	return response, assertion, unsigned
}

func samlElementBytes(t testing.TB, el *etree.Element) []byte {
	t.Helper()
	doc := etree.NewDocument()
	doc.SetRoot(el)
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func samlParse(t testing.TB, b []byte) *etree.Document {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		t.Fatal(err)
	}
	return doc
}

func samlReplace(t testing.TB, b []byte, old, new string) []byte {
	t.Helper()
	if !strings.Contains(string(b), old) {
		t.Fatalf("%q is not in the XML", old)
	}
	return []byte(strings.Replace(string(b), old, new, 1))
}

// samlClient is a client that sends password when asked for one.
type samlClient struct {
	password string
	err      error
	asked    int
}

func (c *samlClient) CleartextPassword(context.Context) (session.Secret, error) {
	c.asked++
	return session.NewSecret(c.password), c.err
}

func (c *samlClient) SASLStart(context.Context, []string) (string, []byte, error) {
	return "", nil, errors.New("not offered")
}

func (c *samlClient) SASLContinue(context.Context, []byte) ([]byte, error) {
	return nil, errors.New("not offered")
}
func (c *samlClient) SASLFinal(context.Context, []byte) error { return errors.New("not offered") }
func (c *samlClient) TLSServerEndPoint() []byte               { return nil }

// newSAMLAuth builds the gateway's authenticator trusting idp, at now.
func newSAMLAuth(t testing.TB, idp *saml.IdentityProvider, now time.Time, change func(*auth.SAMLConfig)) *auth.SAML {
	t.Helper()
	cfg := auth.SAMLConfig{
		IdPMetadata: samlMetadata(t, idp),
		Audience:    samlAudience,
		Recipient:   samlRecipient,
		Now:         func() time.Time { return now },
	}
	if change != nil {
		change(&cfg)
	}
	a, err := auth.NewSAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func samlAuthenticate(a *auth.SAML, password string) (session.Identity, error) {
	return a.Authenticate(context.Background(), &auth.Request{User: "whoever", Database: "app", Client: &samlClient{password: password}})
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestSAMLResponse(t *testing.T) {
	idp := newSAMLIdP(t, samlIdPEntityID, 0)
	sessionEnd := samlIssued.Add(8 * time.Hour)
	response, _, _ := samlIssue(t, idp, samlAudience, samlAlice(), func(a *saml.Assertion) {
		a.AuthnStatements[0].SessionNotOnOrAfter = &sessionEnd
	})
	a := newSAMLAuth(t, idp, samlIssued.Add(5*time.Second), nil)
	c := &samlClient{password: b64(response)}
	id, err := a.Authenticate(context.Background(), &auth.Request{User: "whoever", Database: "app", Client: c})
	if err != nil {
		t.Fatal(err)
	}
	if c.asked != 1 {
		t.Fatalf("asked for the password %d times", c.asked)
	}
	if id.Subject != "alice@example.com" || id.Issuer != samlIdPEntityID || id.Name != "Alice Liddell" ||
		id.Email != "alice@example.com" || id.Method != auth.SAMLMethod || auth.SAMLMethod != "saml" || len(id.Chain) != 0 {
		t.Fatalf("identity %+v", id)
	}
	if !slices.Equal(id.Groups, []string{"analysts", "ops"}) {
		t.Fatalf("groups %q", id.Groups)
	}
	if !id.ExpiresAt.Equal(sessionEnd) {
		t.Fatalf("expires at %s, want the SessionNotOnOrAfter %s", id.ExpiresAt, sessionEnd)
	}
	var claims map[string]any
	if err := id.Claims.Decode(&claims); err != nil {
		t.Fatal(err)
	}
	if claims["NameID"] != "alice@example.com" || claims["SessionIndex"] != samlSessionIndex {
		t.Fatalf("claims %s", id.Claims)
	}
	if v, ok := id.Claims.Lookup(samlGroupsOID); !ok || len(v.([]any)) != 2 || v.([]any)[0] != "analysts" || v.([]any)[1] != "ops" {
		t.Fatalf("groups claim in %s", id.Claims)
	}
	if v, ok := id.Claims.Lookup(samlUIDOID); !ok || len(v.([]any)) != 1 || v.([]any)[0] != "alice" {
		t.Fatalf("uid claim in %s", id.Claims)
	}
}

func TestSAMLBareAssertion(t *testing.T) {
	idp := newSAMLIdP(t, samlIdPEntityID, 0)
	_, assertion, _ := samlIssue(t, idp, samlAudience, samlAlice(), nil)
	a := newSAMLAuth(t, idp, samlIssued.Add(5*time.Second), nil)
	// With line breaks, as base64 tools wrap it.
	text := b64(assertion)
	var wrapped strings.Builder
	for len(text) > 76 {
		wrapped.WriteString(text[:76] + "\n")
		text = text[76:]
	}
	wrapped.WriteString(text + "\n")
	id, err := samlAuthenticate(a, wrapped.String())
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "alice@example.com" || id.Issuer != samlIdPEntityID || !slices.Equal(id.Groups, []string{"analysts", "ops"}) {
		t.Fatalf("identity %+v", id)
	}
	// No SessionNotOnOrAfter: the assertion's own end.
	if want := samlIssued.Add(saml.MaxIssueDelay); !id.ExpiresAt.Equal(want) {
		t.Fatalf("expires at %s, want the Conditions NotOnOrAfter %s", id.ExpiresAt, want)
	}
	// A comment inside the NameID (which canonicalization drops, so the
	// signature stays valid) does not cut the subject short.
	mallory := samlAlice()
	mallory.NameID = "alice@example.com.evil.example"
	_, malloryAssertion, _ := samlIssue(t, idp, samlAudience, mallory, nil)
	commented := samlReplace(t, malloryAssertion, ">alice@example.com.evil.example<", ">alice@example.com<!---->.evil.example<")
	if id, err := samlAuthenticate(a, b64(commented)); err != nil || id.Subject != "alice@example.com.evil.example" {
		t.Fatalf("comment in the NameID: subject %q, %v", id.Subject, err)
	}
	// With an XML declaration and a comment before the root.
	id, err = samlAuthenticate(a, b64(append([]byte("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- from the IdP -->\n"), assertion...)))
	if err != nil || id.Subject != "alice@example.com" {
		t.Fatalf("%+v, %v", id, err)
	}
}

func TestSAMLAttributeMapping(t *testing.T) {
	idp := newSAMLIdP(t, samlIdPEntityID, 0)
	response, _, _ := samlIssue(t, idp, samlAudience, samlAlice(), func(a *saml.Assertion) {
		st := &a.AttributeStatements[0]
		st.Attributes = append(st.Attributes,
			saml.Attribute{Name: "groups", Values: []saml.AttributeValue{{Value: "dba"}, {Value: ""}, {Value: "dba"}, {Value: "dev"}}},
			saml.Attribute{Name: "displayName", Values: []saml.AttributeValue{{Value: ""}, {Value: "Alice L."}}},
			saml.Attribute{Name: "twice", Values: []saml.AttributeValue{{Value: "a"}, {Value: "b"}}},
		)
	})
	now := samlIssued.Add(5 * time.Second)
	a := newSAMLAuth(t, idp, now, func(c *auth.SAMLConfig) {
		c.SubjectAttribute = samlUIDOID
		c.GroupsAttribute = "groups"
		c.NameAttribute = "displayName"
		c.EmailAttribute = "absent"
	})
	id, err := samlAuthenticate(a, b64(response))
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "alice" || id.Name != "Alice L." || id.Email != "" || !slices.Equal(id.Groups, []string{"dba", "dev"}) {
		t.Fatalf("identity %+v", id)
	}
	if v, _ := id.Claims.Lookup("NameID"); v != "alice@example.com" {
		t.Fatalf("claims %s", id.Claims)
	}
	// A multi-valued subject attribute is ambiguous; a missing one leaves
	// no subject.
	for _, attr := range []string{"twice", "absent"} {
		a := newSAMLAuth(t, idp, now, func(c *auth.SAMLConfig) { c.SubjectAttribute = attr })
		if _, err := samlAuthenticate(a, b64(response)); !errors.Is(err, auth.ErrInvalidCredentials) {
			t.Fatalf("subject attribute %s: %v", attr, err)
		}
	}
}

// TestSAMLRefusals checks that every assertion that must not be accepted
// is refused with ErrInvalidCredentials, for the expected reason, and that
// the error never quotes what the client sent.
func TestSAMLRefusals(t *testing.T) {
	idp := newSAMLIdP(t, samlIdPEntityID, 0)
	now := samlIssued.Add(5 * time.Second)
	response, assertion, unsigned := samlIssue(t, idp, samlAudience, samlAlice(), nil)

	otherKey := newSAMLIdP(t, samlIdPEntityID, 1)
	otherKeyResponse, otherKeyAssertion, _ := samlIssue(t, otherKey, samlAudience, samlAlice(), nil)
	otherIssuer := newSAMLIdP(t, "https://evil.example.com/saml/metadata", 0)
	otherIssuerResponse, otherIssuerAssertion, _ := samlIssue(t, otherIssuer, samlAudience, samlAlice(), nil)
	_, otherAudience, _ := samlIssue(t, idp, "https://other.example.com/saml", samlAlice(), nil)
	_, shortLived, _ := samlIssue(t, idp, samlAudience, samlAlice(), func(a *saml.Assertion) {
		a.Conditions.NotOnOrAfter = samlIssued.Add(10 * time.Second)
	})
	sessionEnd := samlIssued.Add(30 * time.Second)
	_, sessionEnded, _ := samlIssue(t, idp, samlAudience, samlAlice(), func(a *saml.Assertion) {
		a.AuthnStatements[0].SessionNotOnOrAfter = &sessionEnd
	})
	_, solicited, _ := samlIssue(t, idp, samlAudience, samlAlice(), func(a *saml.Assertion) {
		a.Subject.SubjectConfirmations[0].SubjectConfirmationData.InResponseTo = "id-request-1"
	})
	_, noNameID, _ := samlIssue(t, idp, samlAudience, func() *saml.Session { s := samlAlice(); s.NameID = ""; return s }(), nil)
	_, sha1Signed, _ := func() ([]byte, []byte, []byte) {
		sha1IdP := newSAMLIdP(t, samlIdPEntityID, 0)
		sha1IdP.SignatureMethod = dsig.RSASHA1SignatureMethod
		return samlIssue(t, sha1IdP, samlAudience, samlAlice(), nil)
	}()

	// Signature wrapping: an unsigned assertion for mallory next to, or
	// around, the signed one.
	evilFrom := func(signed *etree.Element, id string) *etree.Element {
		evil := signed.Copy()
		if sig := evil.FindElement("./Signature"); sig != nil {
			evil.RemoveChild(sig)
		}
		evil.FindElement("./Subject/NameID").SetText("mallory@example.com")
		evil.RemoveAttr("ID")
		evil.CreateAttr("ID", id)
		return evil
	}
	wrapInSignedResponse := func() []byte { // evil inserted before the signed assertion
		doc := samlParse(t, response)
		signed := doc.Root().FindElement("./Assertion")
		doc.Root().InsertChildAt(signed.Index(), evilFrom(signed, "id-evil"))
		return samlElementBytes(t, doc.Root())
	}
	wrapInUnsignedResponse := func(nest bool) []byte { // Response signature dropped
		doc := samlParse(t, response)
		root := doc.Root()
		root.RemoveChild(root.FindElement("./Signature"))
		signed := root.FindElement("./Assertion")
		evil := evilFrom(signed, "id-evil")
		if nest {
			evil.AddChild(signed) // moves it inside the evil one
			root.AddChild(evil)
		} else {
			root.InsertChildAt(signed.Index(), evil)
		}
		return samlElementBytes(t, root)
	}
	bareAround := func() []byte { // evil root around the signed assertion
		signed := samlParse(t, assertion).Root()
		evil := evilFrom(signed, "id-evil")
		evil.AddChild(signed)
		return samlElementBytes(t, evil)
	}
	bareSameID := func() []byte { // evil keeps the ID and the signature, holds the original
		signed := samlParse(t, assertion).Root()
		evil := signed.Copy()
		evil.FindElement("./Subject/NameID").SetText("mallory@example.com")
		obj := evil.FindElement("./Signature").CreateElement("ds:Object")
		obj.AddChild(signed)
		return samlElementBytes(t, evil)
	}
	signatureRemoved := func() []byte {
		doc := samlParse(t, response)
		root := doc.Root()
		root.RemoveChild(root.FindElement("./Signature"))
		a := root.FindElement("./Assertion")
		a.RemoveChild(a.FindElement("./Signature"))
		return samlElementBytes(t, root)
	}
	unsignedResponse := func() []byte {
		doc := samlParse(t, response)
		root := doc.Root()
		root.RemoveChild(root.FindElement("./Signature"))
		root.RemoveChild(root.FindElement("./Assertion"))
		root.AddChild(samlParse(t, unsigned).Root())
		return samlElementBytes(t, root)
	}
	encrypted := samlReplace(t, unsignedResponse(), "</samlp:Response>",
		`<saml:EncryptedAssertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><xenc:EncryptedData xmlns:xenc="http://www.w3.org/2001/04/xmlenc#"/></saml:EncryptedAssertion></samlp:Response>`)

	cases := []struct {
		name     string
		password string
		at       time.Time
		change   func(*auth.SAMLConfig)
		reason   string
	}{
		{name: "tampered group in the response", password: b64(samlReplace(t, response, ">ops<", ">admins<")), reason: "signature"},
		{name: "tampered group in the assertion", password: b64(samlReplace(t, assertion, ">ops<", ">admins<")), reason: "signature"},
		{name: "tampered NameID in the assertion", password: b64(samlReplace(t, assertion, ">alice@example.com</saml:NameID>", ">mallory@example.com</saml:NameID>")), reason: "signature"},
		{name: "response signed by another key", password: b64(otherKeyResponse), reason: "certificate"},
		{name: "assertion signed by another key", password: b64(otherKeyAssertion), reason: "certificate"},
		{name: "response from another issuer", password: b64(otherIssuerResponse), reason: "issuer"},
		{name: "assertion from another issuer", password: b64(otherIssuerAssertion), reason: "issuer"},
		{name: "wrong audience", password: b64(otherAudience), reason: "audience"},
		{name: "wrong recipient", password: b64(assertion), change: func(c *auth.SAMLConfig) { c.Recipient = "https://gateway.example.com/elsewhere" }, reason: "recipient"},
		{name: "expired", password: b64(assertion), at: samlIssued.Add(10 * time.Minute), reason: "expired"},
		{name: "expired response", password: b64(response), at: samlIssued.Add(time.Hour), reason: "expired"},
		{name: "expired within crewjam's skew but not ClockSkew", password: b64(shortLived), at: samlIssued.Add(75 * time.Second), reason: "assertion expired"},
		{name: "not yet valid", password: b64(assertion), at: samlIssued.Add(-10 * time.Minute), reason: "not yet valid"},
		{name: "issued in the future beyond ClockSkew", password: b64(assertion), at: samlIssued.Add(-2 * time.Minute), reason: "future"},
		{name: "IdP session ended", password: b64(sessionEnded), at: samlIssued.Add(45 * time.Second), reason: "session ended"},
		{name: "answers an AuthnRequest", password: b64(solicited), reason: "authentication request"},
		{name: "empty NameID", password: b64(noNameID), reason: "empty subject"},
		{name: "SHA-1 signature", password: b64(sha1Signed), reason: "SHA-1"},
		{name: "unsigned assertion", password: b64(unsigned), reason: "signature"},
		{name: "unsigned response and assertion", password: b64(unsignedResponse()), reason: "signature"},
		{name: "signatures removed", password: b64(signatureRemoved()), reason: "signature"},
		{name: "wrapping: extra assertion in the signed response", password: b64(wrapInSignedResponse()), reason: "signature"},
		{name: "wrapping: extra assertion in an unsigned response", password: b64(wrapInUnsignedResponse(false)), reason: "exactly one"},
		{name: "wrapping: signed assertion nested in an unsigned one", password: b64(wrapInUnsignedResponse(true)), reason: "signature"},
		{name: "wrapping: bare assertion around the signed one", password: b64(bareAround()), reason: "signature"},
		{name: "wrapping: same ID, signature kept, original inside", password: b64(bareSameID()), reason: "signature"},
		{name: "wrapping: two roots", password: b64(append(append([]byte{}, assertion...), samlElementBytes(t, evilFrom(samlParse(t, assertion).Root(), "id-evil"))...)), reason: "more than one root"},
		{name: "encrypted assertion", password: b64(encrypted), reason: "encrypted"},
		{name: "invalid base64", password: "PHNhbWw6QXNzZXJ0aW9u*" + b64(assertion)[21:], reason: "base64"},
		{name: "NUL byte in the password", password: b64(assertion) + "\x00", reason: "NUL"},
		{name: "NUL byte in the XML", password: b64(samlReplace(t, assertion, "Alice Liddell", "Alice\x00Liddell")), reason: "NUL"},
		{name: "oversize for MaxSize", password: b64(assertion), change: func(c *auth.SAMLConfig) { c.MaxSize = 1024 }, reason: "larger than"},
		{name: "oversize by default", password: b64([]byte("<a>" + strings.Repeat("x", 48<<10) + "</a>")), reason: "larger than"},
		{name: "oversize base64", password: strings.Repeat("QUFB", 40<<10), reason: "larger than"},
		{name: "empty", password: "  ", reason: "empty"},
		{name: "not SAML", password: b64([]byte(`<html><body>hello</body></html>`)), reason: "neither"},
		{name: "not XML", password: b64([]byte(`{"sub":"alice"}`)), reason: "XML"},
		{name: "DOCTYPE", password: b64(append([]byte(`<!DOCTYPE x [<!ENTITY e "alice">]>`), assertion...)), reason: "DOCTYPE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			at := now
			if !tc.at.IsZero() {
				at = tc.at
			}
			a := newSAMLAuth(t, idp, at, tc.change)
			id, err := samlAuthenticate(a, tc.password)
			if !errors.Is(err, auth.ErrInvalidCredentials) {
				t.Fatalf("got %+v, %v; want ErrInvalidCredentials", id, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.reason) {
				t.Errorf("reason %q does not mention %q", msg, tc.reason)
			}
			if p := strings.TrimSpace(tc.password); p != "" && strings.Contains(msg, p) || strings.Contains(msg, "<") || strings.Contains(msg, "mallory") {
				t.Errorf("the error quotes the input: %q", msg)
			}
			t.Log(msg)
			if len(msg) > 400 {
				t.Errorf("reason is %d bytes long: %q", len(msg), msg)
			}
		})
	}
}

func TestSAMLConversationErrors(t *testing.T) {
	idp := newSAMLIdP(t, samlIdPEntityID, 0)
	a := newSAMLAuth(t, idp, samlIssued, nil)
	c := &samlClient{err: auth.ErrCleartextRefused}
	_, err := a.Authenticate(context.Background(), &auth.Request{User: "u", Database: "d", Client: c})
	if !errors.Is(err, auth.ErrCleartextRefused) || errors.Is(err, auth.ErrInvalidCredentials) {
		t.Fatalf("%v", err)
	}
}

func TestSAMLConcurrent(t *testing.T) {
	idp := newSAMLIdP(t, samlIdPEntityID, 0)
	response, assertion, _ := samlIssue(t, idp, samlAudience, samlAlice(), nil)
	a := newSAMLAuth(t, idp, samlIssued.Add(time.Second), nil)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			password := b64(response)
			if i%2 == 1 {
				password = b64(assertion)
			}
			if i%4 == 3 {
				password = b64(samlReplace(t, assertion, ">ops<", ">admins<"))
				if _, err := samlAuthenticate(a, password); !errors.Is(err, auth.ErrInvalidCredentials) {
					errs <- err
				}
				return
			}
			if id, err := samlAuthenticate(a, password); err != nil || id.Subject != "alice@example.com" {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestNewSAMLRefusesBadConfig(t *testing.T) {
	idp := newSAMLIdP(t, samlIdPEntityID, 0)
	good := samlMetadata(t, idp)
	noSigning := func() []byte {
		md := idp.Metadata()
		for i := range md.IDPSSODescriptors {
			md.IDPSSODescriptors[i].KeyDescriptors = slices.DeleteFunc(md.IDPSSODescriptors[i].KeyDescriptors,
				func(kd saml.KeyDescriptor) bool { return kd.Use != "encryption" })
		}
		b, err := xml.Marshal(md)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}()
	badCert := samlReplace(t, good, `xmldsig#">MII`, `xmldsig#">AAAAMII`)
	for name, cfg := range map[string]auth.SAMLConfig{
		"no audience":      {IdPMetadata: good},
		"no metadata":      {Audience: samlAudience},
		"garbage metadata": {IdPMetadata: []byte("<not metadata"), Audience: samlAudience},
		"no signing cert":  {IdPMetadata: noSigning, Audience: samlAudience},
		"bad cert":         {IdPMetadata: badCert, Audience: samlAudience},
		"SP metadata": {IdPMetadata: func() []byte {
			sp := &saml.ServiceProvider{EntityID: samlAudience, AcsURL: url.URL{Scheme: "https", Host: "gateway.example.com", Path: "/saml/acs"}}
			b, _ := xml.Marshal(sp.Metadata())
			return b
		}(), Audience: samlAudience},
		"negative skew":         {IdPMetadata: good, Audience: samlAudience, ClockSkew: -time.Second},
		"skew too large":        {IdPMetadata: good, Audience: samlAudience, ClockSkew: 6 * time.Minute},
		"negative MaxSize":      {IdPMetadata: good, Audience: samlAudience, MaxSize: -1},
		"non-canonical URL":     {IdPMetadata: good, Audience: samlAudience, Recipient: "https://gateway.example.com/a b"},
		"unparseable Recipient": {IdPMetadata: good, Audience: samlAudience, Recipient: "https://[::1"},
	} {
		if _, err := auth.NewSAML(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	if _, err := auth.NewSAML(auth.SAMLConfig{IdPMetadata: good, Audience: samlAudience, ClockSkew: 5 * time.Minute}); err != nil {
		t.Errorf("good config: %v", err)
	}
}
