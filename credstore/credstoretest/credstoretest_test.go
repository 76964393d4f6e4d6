package credstoretest_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/credstore/credstoretest"
	"github.com/pgwarden/pgwarden/session"
)

var (
	known   = &session.Info{Identity: session.Identity{Subject: "alice", Groups: []string{"analysts"}}, Database: "app"}
	unknown = &session.Info{Identity: session.Identity{Subject: "mallory"}, Database: "app"}
)

// The suite passes on the fixed credentials of a Static store.
func TestRunStatic(t *testing.T) {
	credstoretest.Run(t, credstoretest.Harness{
		New: func(t *testing.T) credstore.Store {
			s, err := credstore.NewStatic(credstore.StaticEntry{User: "app_ro", Password: session.NewSecret("static-secret-1"), Groups: []string{"analysts"}})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Known:   known,
		Unknown: unknown,
		NoIO:    true,
	})
}

// leasing is an in-memory store that issues a distinct credential per call,
// honours its context and revokes a credential on Release: the shape of a
// just-in-time store, without a server.
type leasing struct {
	n    atomic.Int64
	live sync.Map // user -> struct{}
}

func (l *leasing) Credential(ctx context.Context, info *session.Info) (credstore.Credential, error) {
	if info == nil {
		return credstore.Credential{}, errors.New("no session info")
	}
	if !info.Identity.InGroup("analysts") {
		return credstore.Credential{}, credstore.ErrNoCredential
	}
	select {
	case <-ctx.Done():
		return credstore.Credential{}, ctx.Err()
	case <-time.After(time.Millisecond): // a round trip
	}
	n := l.n.Add(1)
	user := fmt.Sprintf("lease_%d", n)
	l.live.Store(user, struct{}{})
	var released atomic.Bool
	return credstore.Credential{
		User:      user,
		Password:  session.NewSecret("pw-" + user),
		ExpiresAt: time.Now().Add(time.Hour),
		Lease:     user,
		Release: func(context.Context, session.EndReason) error {
			if !released.CompareAndSwap(false, true) {
				return errors.New("released twice")
			}
			l.live.Delete(user)
			return nil
		},
	}, nil
}

func (l *leasing) verify(_ context.Context, cred credstore.Credential) error {
	if _, ok := l.live.Load(cred.User); !ok || cred.Password.Reveal() != "pw-"+cred.User {
		return errors.New("login refused")
	}
	return nil
}

// The suite passes on a store that does I/O, issues distinct credentials
// and revokes them on Release.
func TestRunLeasing(t *testing.T) {
	var cur atomic.Pointer[leasing]
	credstoretest.Run(t, credstoretest.Harness{
		New: func(t *testing.T) credstore.Store {
			l := &leasing{}
			cur.Store(l)
			return l
		},
		Known:            known,
		Unknown:          unknown,
		Verify:           func(ctx context.Context, c credstore.Credential) error { return cur.Load().verify(ctx, c) },
		Distinct:         true,
		RevokedOnRelease: true,
	})
}
