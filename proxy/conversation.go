package proxy

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/internal/wire"
	"github.com/pgwarden/pgwarden/session"
)

// conversation is the proxy's side of auth.Conversation: it speaks the
// authentication messages of the protocol to the client.
type conversation struct {
	cc    *clientConn
	mechs []string // offered SASL mechanisms, once SASLStart was called
}

var _ auth.Conversation = (*conversation)(nil)

func (c *conversation) sendMsg(msg pgproto3.BackendMessage) error {
	b, err := msg.Encode(nil)
	if err != nil {
		return err
	}
	return c.cc.send(b)
}

// readPassword reads the client's next message, which must be a
// PasswordMessage-family message ('p').
func (c *conversation) readPassword() ([]byte, error) {
	m, err := c.cc.rd.Next()
	if err != nil {
		if _, ok := err.(*wire.TooLargeError); ok {
			return nil, fmt.Errorf("%w: %v", auth.ErrExchange, err)
		}
		return nil, err
	}
	if m.Type != 'p' {
		return nil, fmt.Errorf("%w: expected an authentication response, got message type %q", auth.ErrExchange, m.Type)
	}
	return m.Body, nil
}

// CleartextPassword implements auth.Conversation.
func (c *conversation) CleartextPassword(ctx context.Context) (session.Secret, error) {
	if c.cc.tls == nil && !c.cc.p.AllowCleartextPasswordWithoutTLS {
		return session.Secret{}, auth.ErrCleartextRefused
	}
	if err := c.sendMsg(&pgproto3.AuthenticationCleartextPassword{}); err != nil {
		return session.Secret{}, err
	}
	body, err := c.readPassword()
	if err != nil {
		return session.Secret{}, err
	}
	pw, rest, ok := wire.CString(body)
	if !ok || len(rest) != 0 {
		return session.Secret{}, fmt.Errorf("%w: malformed password message", auth.ErrExchange)
	}
	return session.NewSecret(string(pw)), nil
}

// SASLStart implements auth.Conversation.
func (c *conversation) SASLStart(ctx context.Context, mechanisms []string) (string, []byte, error) {
	if c.mechs != nil {
		return "", nil, fmt.Errorf("%w: SASL exchange already started", auth.ErrExchange)
	}
	if slices.Contains(mechanisms, "OAUTHBEARER") && c.cc.tls == nil && !c.cc.p.AllowCleartextPasswordWithoutTLS {
		// A bearer token is a cleartext secret (RFC 7628 §5).
		return "", nil, auth.ErrCleartextRefused
	}
	c.mechs = slices.Clone(mechanisms)
	if err := c.sendMsg(&pgproto3.AuthenticationSASL{AuthMechanisms: mechanisms}); err != nil {
		return "", nil, err
	}
	body, err := c.readPassword()
	if err != nil {
		return "", nil, err
	}
	mech, rest, ok := wire.CString(body)
	if !ok || len(rest) < 4 {
		return "", nil, fmt.Errorf("%w: malformed SASLInitialResponse", auth.ErrExchange)
	}
	if !slices.Contains(c.mechs, string(mech)) {
		return "", nil, fmt.Errorf("%w: client chose SASL mechanism %q, which was not offered", auth.ErrExchange, mech)
	}
	n := int32(binary.BigEndian.Uint32(rest))
	rest = rest[4:]
	switch {
	case n == -1 && len(rest) == 0:
		return string(mech), nil, nil
	case n >= 0 && int(n) == len(rest):
		return string(mech), slices.Clone(rest), nil
	}
	return "", nil, fmt.Errorf("%w: malformed SASLInitialResponse length", auth.ErrExchange)
}

// SASLContinue implements auth.Conversation.
func (c *conversation) SASLContinue(ctx context.Context, challenge []byte) ([]byte, error) {
	if c.mechs == nil {
		return nil, fmt.Errorf("%w: SASL exchange not started", auth.ErrExchange)
	}
	if err := c.sendMsg(&pgproto3.AuthenticationSASLContinue{Data: challenge}); err != nil {
		return nil, err
	}
	body, err := c.readPassword()
	if err != nil {
		return nil, err
	}
	return slices.Clone(body), nil
}

// SASLFinal implements auth.Conversation.
func (c *conversation) SASLFinal(ctx context.Context, data []byte) error {
	if c.mechs == nil {
		return fmt.Errorf("%w: SASL exchange not started", auth.ErrExchange)
	}
	return c.sendMsg(&pgproto3.AuthenticationSASLFinal{Data: data})
}

// TLSServerEndPoint implements auth.Conversation.
func (c *conversation) TLSServerEndPoint() []byte { return slices.Clone(c.cc.endpoint) }
