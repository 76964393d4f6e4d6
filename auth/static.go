package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/xdg-go/scram"

	"github.com/pgwarden/pgwarden/internal/scramhash"
	"github.com/pgwarden/pgwarden/session"
)

// StaticIssuer is the Issuer of identities that Static authenticates.
const StaticIssuer = "static"

// User is one user of a Static authenticator. Give either Password or
// Verifier.
type User struct {
	// Name is the user name clients put in their startup packet; it becomes
	// the identity's Subject.
	Name string
	// Password is the user's password. It is turned into a SCRAM verifier
	// when the authenticator is built and is not kept.
	Password session.Secret
	// Verifier is a SCRAM-SHA-256 verifier in PostgreSQL's pg_authid format:
	// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>. Prefer it
	// to Password: it does not reveal the password.
	Verifier string
	// Groups become the identity's Groups.
	Groups []string
}

// Static authenticates users from a fixed list with SCRAM-SHA-256 (RFC 7677),
// as PostgreSQL does; with TLS it also offers SCRAM-SHA-256-PLUS, binding the
// exchange to the TLS connection so that a man in the middle cannot relay it.
// The client never sends its password, and the gateway never stores it.
//
// An unknown user gets the same exchange as a known one, with a fake salt
// that is stable per name, and then the same error: users cannot be
// enumerated. A Static is safe for concurrent use.
type Static struct {
	users   map[string]staticUser
	mockKey []byte
}

type staticUser struct {
	cred   scram.StoredCredentials
	groups []string
}

// NewStatic builds a Static authenticator. It fails on an empty or duplicate
// name, a user with neither or both of Password and Verifier, or a malformed
// Verifier.
func NewStatic(users ...User) (*Static, error) {
	s := &Static{users: make(map[string]staticUser, len(users)), mockKey: make([]byte, 32)}
	if _, err := rand.Read(s.mockKey); err != nil {
		return nil, err
	}
	for _, u := range users {
		if u.Name == "" || strings.ContainsRune(u.Name, 0) {
			return nil, errors.New("auth: static user with an empty or invalid name")
		}
		if _, dup := s.users[u.Name]; dup {
			return nil, fmt.Errorf("auth: static user %q is listed twice", u.Name)
		}
		var cred scram.StoredCredentials
		var err error
		switch {
		case u.Verifier != "" && !u.Password.IsZero():
			return nil, fmt.Errorf("auth: static user %q has both a password and a verifier", u.Name)
		case u.Verifier != "":
			cred, err = parseVerifier(u.Verifier)
		case !u.Password.IsZero():
			cred, err = storedCredentials(u.Password)
		default:
			return nil, fmt.Errorf("auth: static user %q has no password or verifier", u.Name)
		}
		if err != nil {
			return nil, fmt.Errorf("auth: static user %q: %w", u.Name, err)
		}
		s.users[u.Name] = staticUser{cred: cred, groups: slices.Clone(u.Groups)}
	}
	return s, nil
}

// Knows reports whether user is one of the static users. Use it with When
// to put static users in a Chain: the chain then tells static users from
// others by name, which reveals which names are static users (keep them
// for development).
func (s *Static) Knows(user string) bool {
	_, ok := s.users[user]
	return ok
}

// Authenticate runs SCRAM-SHA-256 with the client for req.User.
func (s *Static) Authenticate(ctx context.Context, req *Request) (session.Identity, error) {
	u, known := s.users[req.User]
	cred := u.cred
	if !known {
		cred = s.mockCredentials(req.User)
	}
	mech, err := runSCRAM(ctx, req.Client, cred)
	if err != nil {
		return session.Identity{}, err
	}
	if !known {
		// Unreachable unless the client guessed a random key; stay safe.
		return session.Identity{}, ErrInvalidCredentials
	}
	return session.Identity{
		Subject: req.User,
		Issuer:  StaticIssuer,
		Name:    req.User,
		Groups:  slices.Clone(u.groups),
		Method:  strings.ToLower(mech),
	}, nil
}

// mockCredentials derives credentials for an unknown user that are stable
// per name and that no password matches.
func (s *Static) mockCredentials(name string) scram.StoredCredentials {
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, s.mockKey)
		m.Write([]byte(label))
		m.Write([]byte{0})
		m.Write([]byte(name))
		return m.Sum(nil)
	}
	return scram.StoredCredentials{
		KeyFactors: scram.KeyFactors{Salt: string(derive("salt")[:16]), Iters: scramhash.Iterations},
		StoredKey:  derive("stored"),
		ServerKey:  derive("server"),
	}
}

// SCRAM mechanism names, as PostgreSQL spells them.
const (
	mechSCRAM     = "SCRAM-SHA-256"
	mechSCRAMPlus = "SCRAM-SHA-256-PLUS"
)

// runSCRAM runs a SCRAM-SHA-256 server exchange against cred and returns the
// mechanism the client used.
func runSCRAM(ctx context.Context, c Conversation, cred scram.StoredCredentials) (string, error) {
	server, err := scram.SHA256.NewServer(func(string) (scram.StoredCredentials, error) {
		// PostgreSQL clients send an empty SCRAM user name: the user is the
		// one from the startup packet, already resolved to cred.
		return cred, nil
	})
	if err != nil {
		return "", err
	}
	mechs := []string{mechSCRAM}
	binding := c.TLSServerEndPoint()
	conv := server.NewConversation()
	if binding != nil {
		mechs = []string{mechSCRAMPlus, mechSCRAM}
		conv = server.NewConversationWithChannelBinding(scram.ChannelBinding{
			Type: scram.ChannelBindingTLSServerEndpoint, Data: binding,
		})
	}
	mech, first, err := c.SASLStart(ctx, mechs)
	if err != nil {
		return "", err
	}
	// The mechanism and the GS2 channel-binding flag must agree: PLUS
	// requires "p=", the plain mechanism forbids it.
	if (mech == mechSCRAMPlus) != strings.HasPrefix(string(first), "p=") {
		return "", fmt.Errorf("%w: SCRAM channel-binding flag does not match mechanism %s", ErrExchange, mech)
	}
	serverFirst, err := conv.Step(string(first))
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrExchange, err)
	}
	clientFinal, err := c.SASLContinue(ctx, []byte(serverFirst))
	if err != nil {
		return "", err
	}
	serverFinal, err := conv.Step(string(clientFinal))
	if err != nil || !conv.Valid() {
		// Wrong proof, or channel binding that does not match this TLS
		// connection: both are failed authentication.
		return "", ErrInvalidCredentials
	}
	if err := c.SASLFinal(ctx, []byte(serverFinal)); err != nil {
		return "", err
	}
	return mech, nil
}

// storedCredentials derives a SCRAM-SHA-256 verifier from a password.
func storedCredentials(password session.Secret) (scram.StoredCredentials, error) {
	return scramhash.Credentials(password.Reveal())
}

// parseVerifier parses a SCRAM-SHA-256 verifier in PostgreSQL's format
// (SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>, as stored in
// pg_authid.rolpassword).
func parseVerifier(v string) (scram.StoredCredentials, error) {
	bad := errors.New("malformed SCRAM-SHA-256 verifier (want SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>)")
	rest, ok := strings.CutPrefix(v, "SCRAM-SHA-256$")
	if !ok {
		return scram.StoredCredentials{}, bad
	}
	factors, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return scram.StoredCredentials{}, bad
	}
	iterText, saltText, ok1 := strings.Cut(factors, ":")
	storedText, serverText, ok2 := strings.Cut(keys, ":")
	if !ok1 || !ok2 {
		return scram.StoredCredentials{}, bad
	}
	iters, err := strconv.Atoi(iterText)
	if err != nil || iters < 1 {
		return scram.StoredCredentials{}, bad
	}
	salt, err1 := base64.StdEncoding.DecodeString(saltText)
	stored, err2 := base64.StdEncoding.DecodeString(storedText)
	server, err3 := base64.StdEncoding.DecodeString(serverText)
	if err1 != nil || err2 != nil || err3 != nil || len(salt) == 0 ||
		len(stored) != sha256.Size || len(server) != sha256.Size {
		return scram.StoredCredentials{}, bad
	}
	return scram.StoredCredentials{
		KeyFactors: scram.KeyFactors{Salt: string(salt), Iters: iters},
		StoredKey:  stored,
		ServerKey:  server,
	}, nil
}

// Verifier returns a SCRAM-SHA-256 verifier for password, with a random
// salt, in PostgreSQL's pg_authid format. Put it in User.Verifier (or the
// example gateway's `scram:` key) to keep passwords out of configuration.
func Verifier(password session.Secret) (string, error) {
	return scramhash.Verifier(password.Reveal())
}
