package session

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Claims are the raw claims an identity was built from (a token's payload,
// a SAML assertion's attributes), as a JSON object. A Claims value is
// read-only: it holds an immutable copy, so sharing it between sessions,
// plugins and goroutines is safe. The zero value is an empty object.
//
// Claims are for policies and recordings that need a claim pgwarden does not
// map (a tenant id, an acr value). They are what the issuer signed, not a
// secret: a token's signature is never kept.
type Claims struct {
	raw string // a JSON object, or "" for none
}

// ErrClaimsNotObject is returned by NewClaims for JSON that is not an object.
var ErrClaimsNotObject = errors.New("session: claims must be a JSON object")

// NewClaims makes Claims from a JSON object. It fails on invalid JSON or on
// a value that is not an object.
func NewClaims(object []byte) (Claims, error) {
	t := bytes.TrimSpace(object)
	if len(t) == 0 || t[0] != '{' || !json.Valid(t) {
		return Claims{}, ErrClaimsNotObject
	}
	return Claims{raw: string(t)}, nil
}

// ClaimsFrom makes Claims by encoding v (a map or a struct) as JSON.
func ClaimsFrom(v any) (Claims, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return Claims{}, err
	}
	return NewClaims(b)
}

// IsZero reports whether there are no claims.
func (c Claims) IsZero() bool { return c.raw == "" || c.raw == "{}" }

// JSON returns the claims as a JSON object ("{}" when there are none). The
// caller owns the slice.
func (c Claims) JSON() []byte {
	if c.raw == "" {
		return []byte("{}")
	}
	return []byte(c.raw)
}

// Decode unmarshals the claims into v, as json.Unmarshal does.
func (c Claims) Decode(v any) error { return json.Unmarshal(c.JSON(), v) }

// Lookup returns the value of the top-level claim name, decoded as
// json.Unmarshal decodes into an any (strings, float64, bool, nil,
// []any, map[string]any), and whether it is present.
func (c Claims) Lookup(name string) (any, bool) {
	if c.raw == "" {
		return nil, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(c.raw), &m) != nil {
		return nil, false
	}
	raw, ok := m[name]
	if !ok {
		return nil, false
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return nil, false
	}
	return v, true
}

// String returns the claims as JSON.
func (c Claims) String() string { return string(c.JSON()) }

// MarshalJSON encodes the claims as the JSON object they are.
func (c Claims) MarshalJSON() ([]byte, error) { return c.JSON(), nil }

// UnmarshalJSON reads a JSON object (or null, for none).
func (c *Claims) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "null" {
		*c = Claims{}
		return nil
	}
	n, err := NewClaims(b)
	if err != nil {
		return err
	}
	*c = n
	return nil
}
