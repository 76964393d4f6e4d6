package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/session"
)

// Func adapts a function to an Authenticator: here, API keys a platform
// issues to its services, sent as the password. It keeps the contract:
// ErrNotApplicable for a password that is not an API key (so that a
// Chain tries its next member), ErrInvalidCredentials for a wrong key,
// a *session.Error for what the client should read, and never the key
// in an error.
func ExampleFunc() {
	// The SHA-256 of each key, never the keys themselves.
	digest := func(key string) string { sum := sha256.Sum256([]byte(key)); return hex.EncodeToString(sum[:]) }
	services := map[string]string{
		digest("pgk_7Qw2billing"): "billing",
		digest("pgk_0Zx9legacy"):  "legacy-export",
	}
	retired := map[string]bool{"legacy-export": true}

	apiKeys := auth.Func(func(ctx context.Context, req *auth.Request) (session.Identity, error) {
		password, err := req.Client.CleartextPassword(ctx) // refused without TLS, unless the host allows it
		if err != nil {
			return session.Identity{}, err
		}
		key := password.Reveal()
		if !strings.HasPrefix(key, "pgk_") {
			return session.Identity{}, auth.ErrNotApplicable
		}
		service, ok := services[digest(key)]
		switch {
		case !ok:
			return session.Identity{}, fmt.Errorf("%w: unknown API key", auth.ErrInvalidCredentials)
		case retired[service]:
			return session.Identity{}, &session.Error{Code: session.CodeInvalidAuthorization,
				Message: "this API key was retired", Hint: "Ask the platform team for a new one."}
		}
		return session.Identity{Subject: service, Issuer: "api-keys", Groups: []string{"services"}, Method: "api-key"}, nil
	})

	for _, password := range []string{"pgk_7Qw2billing", "pgk_guess", "pgk_0Zx9legacy", "hunter2"} {
		id, err := apiKeys.Authenticate(context.Background(), &auth.Request{User: "svc", Database: "app",
			Client: passwordClient{password}})
		var pgErr *session.Error
		switch {
		case err == nil:
			fmt.Println("identity:", id.Subject, id.Groups)
		case errors.Is(err, auth.ErrNotApplicable):
			fmt.Println("not an API key: the next authenticator of a Chain decides")
		case errors.Is(err, auth.ErrInvalidCredentials):
			fmt.Println("refused: the client gets FATAL 28P01")
		case errors.As(err, &pgErr):
			fmt.Printf("refused: the client gets FATAL %s %q\n", pgErr.Code, pgErr.Message)
		}
	}
	// Output:
	// identity: billing [services]
	// refused: the client gets FATAL 28P01
	// refused: the client gets FATAL 28000 "this API key was retired"
	// not an API key: the next authenticator of a Chain decides
}
