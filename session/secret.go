package session

import "log/slog"

// redacted is what a Secret shows of itself everywhere but Reveal.
const redacted = "REDACTED"

// Secret holds a password, token or other credential. It prints, formats,
// logs and marshals as "REDACTED", so that it cannot reach a log, an error
// message or a recording by accident; Reveal is the only way to read it.
// The value is kept behind a pointer, so that even the ways fmt prints
// without calling methods (a verb such as %d, or a Secret inside a struct
// reached through a pointer) show an address, never the value. Copies of a
// Secret share the value; the zero Secret is empty.
type Secret struct {
	p *secretValue
}

type secretValue struct{ s string }

// NewSecret wraps a secret value.
func NewSecret(value string) Secret { return Secret{p: &secretValue{value}} }

// Reveal returns the secret value. Call it only where the value goes on the
// wire to the party entitled to it.
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return s.p.s
}

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

// String returns "REDACTED".
func (s Secret) String() string { return redacted }

// GoString returns "REDACTED", so that %#v does not show the value either.
func (s Secret) GoString() string { return redacted }

// LogValue makes slog record "REDACTED".
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalText returns "REDACTED", so that JSON, YAML and text encoders never
// see the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }
