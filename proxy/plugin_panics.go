package proxy

import (
	"context"
	"fmt"
	"runtime/debug"

	"github.com/pgwarden/pgwarden/auth"
	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// The gateway calls code it does not own: the host's Authenticator,
// credential Store, Policy, Approver, Recorder, Maskers and Detectors. A
// panic in one of them is a bug in that plugin; it must not take every
// other session down with the gateway. Each call is guarded: the panic
// becomes the plugin's error, which fails closed as any error of that
// plugin does (login refused, statement refused, session ended). The log
// gets the panic and its stack; the client never does.

// pluginPanicked is the error a recovered panic becomes.
func pluginPanicked(plugin string, r any) error {
	return fmt.Errorf("the %s panicked: %v\n%s", plugin, r, debug.Stack())
}

// authenticate calls the Authenticator (it runs on bytes from an
// unauthenticated client).
func authenticate(ctx context.Context, a auth.Authenticator, req *auth.Request) (id session.Identity, err error) {
	defer func() {
		if r := recover(); r != nil {
			id, err = session.Identity{}, pluginPanicked("authenticator", r)
		}
	}()
	return a.Authenticate(ctx, req)
}

// credential calls the credential Store.
func credential(ctx context.Context, s credstore.Store, info *session.Info) (c credstore.Credential, err error) {
	defer func() {
		if r := recover(); r != nil {
			c, err = credstore.Credential{}, pluginPanicked("credential store", r)
		}
	}()
	return s.Credential(ctx, info)
}

// approve calls the Approver.
func approve(ctx context.Context, a policy.Approver, req *policy.ApprovalRequest) (d policy.ApprovalDecision, err error) {
	defer func() {
		if r := recover(); r != nil {
			d, err = policy.ApprovalDecision{}, pluginPanicked("approver", r)
		}
	}()
	return a.Approve(ctx, req)
}

// guardedRecorder is the session's Recorder, its panics turned into errors
// (which end the session unless the host chose session.BestEffort).
type guardedRecorder struct{ r session.Recorder }

func (g guardedRecorder) Record(ctx context.Context, ev session.Event) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = pluginPanicked("recorder", r)
		}
	}()
	return g.r.Record(ctx, ev)
}

// Quick reports the host's recorder's promise (see session.QuickRecorder);
// a panic in it is no promise.
func (g guardedRecorder) Quick(k session.EventKind) (quick bool) {
	defer func() {
		if recover() != nil {
			quick = false
		}
	}()
	return session.IsQuick(g.r, k)
}
