package proxy_test

// A SAML assertion from crewjam/saml's identity provider as the password,
// through the gateway against the real cluster.

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/xml"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/jackc/pgx/v5"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/proxy"
)

const (
	identSAMLIdP       = "https://idp.example.com/saml/metadata"
	identSAMLAudience  = "https://gateway.example.com/saml"
	identSAMLRecipient = "https://gateway.example.com/saml/acs"
)

// identSAMLSPs knows the service providers the test IdP issues for.
type identSAMLSPs map[string]*saml.EntityDescriptor

func (p identSAMLSPs) GetServiceProvider(_ *http.Request, id string) (*saml.EntityDescriptor, error) {
	if d, ok := p[id]; ok {
		return d, nil
	}
	return nil, os.ErrNotExist
}

// identSAMLProvider is a crewjam/saml IdP on the real clock, signing with a
// fresh RSA key, that knows the gateway.
func identSAMLProvider(t testing.TB) *saml.IdentityProvider {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pgwarden identity test SAML IdP"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
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
	sp := saml.ServiceProvider{EntityID: identSAMLAudience, AcsURL: mustURL(identSAMLRecipient),
		AssertionConsumerServiceBindings: []string{saml.HTTPPostBinding}}
	return &saml.IdentityProvider{
		Key:                     key,
		Certificate:             cert,
		MetadataURL:             mustURL(identSAMLIdP),
		SSOURL:                  mustURL("https://idp.example.com/saml/sso"),
		ServiceProviderProvider: identSAMLSPs{identSAMLAudience: sp.Metadata()},
		SignatureMethod:         dsig.RSASHA256SignatureMethod,
	}
}

// identSAMLResponse has idp issue an IdP-initiated, signed Response for
// the gateway about alice, as XML.
func identSAMLResponse(t testing.TB, idp *saml.IdentityProvider) []byte {
	t.Helper()
	req, err := idp.NewIdpInitiatedRequest(httptest.NewRequest("GET", "https://idp.example.com/login", nil), identSAMLAudience, "")
	if err != nil {
		t.Fatal(err)
	}
	sess := &saml.Session{
		ID:             "identity-test-session",
		CreateTime:     time.Now().Add(-time.Minute),
		ExpireTime:     time.Now().Add(time.Hour),
		Index:          "identity-test-index",
		NameID:         "alice@example.com",
		NameIDFormat:   string(saml.EmailAddressNameIDFormat),
		UserName:       "alice",
		UserEmail:      "alice@example.com",
		UserCommonName: "Alice Liddell",
		Groups:         []string{"analysts"},
	}
	if err := (saml.DefaultAssertionMaker{}).MakeAssertion(req, sess); err != nil {
		t.Fatal(err)
	}
	if err := req.MakeAssertionEl(); err != nil {
		t.Fatal(err)
	}
	if err := req.MakeResponse(); err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	doc.SetRoot(req.ResponseEl)
	b, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSAMLThroughTheGateway: a signed assertion as the password over TLS
// logs in as its subject; a tampered one is refused with 28P01 before any
// upstream connection.
func TestSAMLThroughTheGateway(t *testing.T) {
	ctx := testContext(t)
	idp := identSAMLProvider(t)
	metadata, err := xml.Marshal(idp.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	a, err := auth.NewSAML(auth.SAMLConfig{IdPMetadata: metadata, Audience: identSAMLAudience, Recipient: identSAMLRecipient})
	if err != nil {
		t.Fatal(err)
	}
	ig := startIdentGateway(t, a, func(p *proxy.Proxy) { p.AllowPlaintext = false })

	response := identSAMLResponse(t, idp)
	password := ig.secret(base64.StdEncoding.EncodeToString(response))
	conn := identConnect(t, ig.config(t, password))
	s := identQuerySettings(t, conn)
	if s.subject != "alice@example.com" || s.issuer != identSAMLIdP || s.appName != "pgwarden:alice@example.com" {
		t.Fatalf("SAML: subject %q issuer %q application_name %q", s.subject, s.issuer, s.appName)
	}
	identWantChain(t, s.chain, []identHop{{"alice@example.com", identSAMLIdP}})
	start := identStart(t, ig.rec, s.sessionID)
	if id := start.Info.Identity; id.Method != auth.SAMLMethod || id.Name != "Alice Liddell" ||
		len(id.Groups) != 1 || id.Groups[0] != "analysts" || id.ExpiresAt.IsZero() || start.Info.UpstreamUser != rwRole {
		t.Fatalf("recorded identity %+v, upstream %q", id, start.Info.UpstreamUser)
	}

	// The same response with another subject: the signature no longer
	// covers what it says.
	tampered := strings.ReplaceAll(string(response), ">alice@example.com<", ">mallory@example.com<")
	if tampered == string(response) {
		t.Fatal("the response does not name alice@example.com")
	}
	before := ig.dials.Load()
	_, err = pgx.ConnectConfig(ctx, ig.config(t, ig.secret(base64.StdEncoding.EncodeToString([]byte(tampered)))))
	identRefused(t, "tampered assertion", err, "28P01")
	// A fresh, untouched response from another IdP (another key) for the
	// same entity ID is refused too.
	impostor := identSAMLProvider(t)
	_, err = pgx.ConnectConfig(ctx, ig.config(t, ig.secret(base64.StdEncoding.EncodeToString(identSAMLResponse(t, impostor)))))
	identRefused(t, "assertion signed by another key", err, "28P01")
	if ig.dials.Load() != before {
		t.Fatal("refused assertions opened upstream connections")
	}
}
