package credstore

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/pgwarden/pgwarden/session"
)

// StaticEntry maps identities to one fixed database credential.
type StaticEntry struct {
	// User and Password are the database role and its password.
	User     string
	Password session.Secret
	// Groups and Subjects select the identities the entry is for: an
	// identity matches when it is in any of Groups or its Subject is any of
	// Subjects. An entry with neither matches every identity.
	Groups   []string
	Subjects []string
}

func (e *StaticEntry) matches(id session.Identity) bool {
	if len(e.Groups) == 0 && len(e.Subjects) == 0 {
		return true
	}
	if slices.Contains(e.Subjects, id.Subject) {
		return true
	}
	return slices.ContainsFunc(e.Groups, id.InGroup)
}

// Static is a Store with fixed credentials: a session gets the first entry
// that matches its identity, and ErrNoCredential when none does. A Static is
// safe for concurrent use and must not be modified once in use.
type Static struct {
	// Entries are tried in order.
	Entries []StaticEntry
}

// NewStatic checks entries (each needs a user and a password) and returns a
// Static that holds a copy of them.
func NewStatic(entries ...StaticEntry) (*Static, error) {
	for i, e := range entries {
		if e.User == "" {
			return nil, fmt.Errorf("credstore: static entry %d has no user", i+1)
		}
		if e.Password.IsZero() {
			return nil, fmt.Errorf("credstore: static entry %d (user %q) has no password", i+1, e.User)
		}
	}
	return &Static{Entries: slices.Clone(entries)}, nil
}

// Credential returns the first entry's credential that matches the session's
// identity.
func (s *Static) Credential(_ context.Context, info *session.Info) (Credential, error) {
	if info == nil {
		return Credential{}, errors.New("credstore: no session info")
	}
	for i := range s.Entries {
		if e := &s.Entries[i]; e.matches(info.Identity) {
			return Credential{User: e.User, Password: e.Password}, nil
		}
	}
	return Credential{}, ErrNoCredential
}
