package credstoretest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/session"
)

// Defaults of Harness.
const (
	// DefaultGoroutines is how many goroutines the concurrency subtest runs.
	DefaultGoroutines = 16
	// DefaultCalls is how many credentials each of them asks for.
	DefaultCalls = 3
	// DefaultTimeout bounds each call of the suite to the store (a hang
	// fails instead of stalling the run; it is not a timing assertion).
	DefaultTimeout = 30 * time.Second
	// PromptCancel is how soon a store must return once its context is
	// cancelled.
	PromptCancel = 5 * time.Second
)

// Harness describes the Store under test to Run. New, Known and Unknown
// are required; every other field has a zero value that suits a store of
// fixed credentials.
type Harness struct {
	// New returns a fresh Store for one subtest. It registers whatever
	// cleanup the store needs with t.Cleanup, and fails t (t.Fatal) when
	// the store cannot be built.
	New func(t *testing.T) credstore.Store

	// Known is a session the store has a credential for; Unknown is one it
	// has none for (the store must return credstore.ErrNoCredential). The
	// suite hands each call its own copy (Info.Clone), and checks that the
	// store leaves it unchanged.
	Known, Unknown *session.Info

	// Verify, when not nil, proves that a credential works: for a store of
	// database roles, it logs in to the server as cred and returns an
	// error when it cannot. The suite calls it for every credential it
	// gets (before releasing it), from many goroutines at once.
	Verify func(ctx context.Context, cred credstore.Credential) error

	// NoIO says the store does no I/O and does not look at its context:
	// with an already cancelled context it returns its credential anyway.
	// When NoIO is false (a store that talks to a server), a cancelled
	// context must make it return an error, within PromptCancel. A store
	// that does no I/O but checks its context should leave NoIO false.
	NoIO bool

	// Distinct says every call issues a new credential (just-in-time
	// roles): no two calls may return the same user or password.
	Distinct bool

	// RevokedOnRelease says that once Release returns, the credential no
	// longer works: Verify must then fail. It needs Verify.
	RevokedOnRelease bool

	// Goroutines and Calls size the concurrency subtest (Goroutines
	// goroutines asking Calls credentials each); zero means
	// DefaultGoroutines and DefaultCalls.
	Goroutines, Calls int

	// Timeout bounds each call to the store, to Verify and to Release;
	// zero means DefaultTimeout.
	Timeout time.Duration
}

// Run runs the conformance suite against the store h describes, as
// subtests of t:
//
//   - Credential: Known gets a credential with a user and a password, an
//     ExpiresAt in the future (or zero), that Verify accepts.
//   - NotFound: Unknown gets an error matching credstore.ErrNoCredential,
//     and no Release hook or password with it.
//   - CancelledContext: with a cancelled context, the store returns an
//     error promptly (or, with NoIO, its credential).
//   - NilInfo: a nil *session.Info gets an error, not a panic.
//   - InfoUnchanged: the store does not modify the session it is given.
//   - Concurrent: many goroutines at once each get working credentials
//     (distinct ones when Distinct), and release them.
//   - SecretsNotPrinted: fmt (%v, %+v, %#v, %s), encoding/json, log/slog
//     (text and JSON) and errors made from the credential never show its
//     password.
//   - ReleaseOnce: Release, when set, returns nil the one time it is
//     called, and afterwards (when RevokedOnRelease) the credential no
//     longer works.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil || h.Known == nil || h.Unknown == nil {
		t.Fatal("credstoretest: Harness needs New, Known and Unknown")
	}
	if h.RevokedOnRelease && h.Verify == nil {
		t.Fatal("credstoretest: Harness.RevokedOnRelease needs Verify")
	}
	if h.Goroutines <= 0 {
		h.Goroutines = DefaultGoroutines
	}
	if h.Calls <= 0 {
		h.Calls = DefaultCalls
	}
	if h.Timeout <= 0 {
		h.Timeout = DefaultTimeout
	}
	s := &suite{h: h}
	t.Run("Credential", s.testCredential)
	t.Run("NotFound", s.testNotFound)
	t.Run("CancelledContext", s.testCancelledContext)
	t.Run("NilInfo", s.testNilInfo)
	t.Run("InfoUnchanged", s.testInfoUnchanged)
	t.Run("Concurrent", s.testConcurrent)
	t.Run("SecretsNotPrinted", s.testSecretsNotPrinted)
	t.Run("ReleaseOnce", s.testReleaseOnce)
}

type suite struct{ h Harness }

// ctx is a context for one call, bounded by the harness's timeout.
func (s *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), s.h.Timeout)
	t.Cleanup(cancel)
	return ctx
}

// issue gets a credential for Known, checks its shape, and registers its
// release (unless the test releases it itself, see release).
func (s *suite) issue(t *testing.T, store credstore.Store) credstore.Credential {
	t.Helper()
	cred, err := store.Credential(s.ctx(t), s.h.Known.Clone())
	if err != nil {
		t.Fatalf("Credential(Known): %v", err)
	}
	s.checkShape(t, cred)
	return cred
}

// checkShape checks what every credential must hold.
func (s *suite) checkShape(t testing.TB, cred credstore.Credential) {
	t.Helper()
	if cred.User == "" {
		t.Error("the credential has no user")
	}
	if cred.Password.IsZero() {
		t.Error("the credential has no password")
	}
	if !cred.ExpiresAt.IsZero() && !cred.ExpiresAt.After(time.Now()) {
		t.Errorf("the credential expired when it was issued (ExpiresAt %v)", cred.ExpiresAt)
	}
}

// release calls cred.Release, when set, once.
func (s *suite) release(t testing.TB, ctx context.Context, cred credstore.Credential) {
	t.Helper()
	if cred.Release == nil {
		return
	}
	if err := cred.Release(ctx, session.EndClientExit); err != nil {
		t.Errorf("Release of %q: %v", cred.User, err)
	}
}

func (s *suite) testCredential(t *testing.T) {
	store := s.h.New(t)
	cred := s.issue(t, store)
	defer s.release(t, s.ctx(t), cred)
	if s.h.Verify != nil {
		if err := s.h.Verify(s.ctx(t), cred); err != nil {
			t.Errorf("Verify rejected the credential of %q: %v", cred.User, err)
		}
	}
}

func (s *suite) testNotFound(t *testing.T) {
	store := s.h.New(t)
	cred, err := store.Credential(s.ctx(t), s.h.Unknown.Clone())
	if !errors.Is(err, credstore.ErrNoCredential) {
		t.Errorf("Credential(Unknown) = %v, want an error matching credstore.ErrNoCredential", err)
	}
	checkNothingOnError(t, cred, err)
}

// checkNothingOnError checks that a failed call returns nothing to
// release: the proxy ignores the credential when there is an error, so a
// Release hook would never be called.
func checkNothingOnError(t testing.TB, cred credstore.Credential, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if cred.Release != nil {
		t.Error("a failed Credential call returned a Release hook (the proxy never calls it: a leak)")
	}
	if !cred.Password.IsZero() {
		t.Error("a failed Credential call returned a password")
	}
}

func (s *suite) testCancelledContext(t *testing.T) {
	store := s.h.New(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	type result struct {
		cred credstore.Credential
		err  error
	}
	done := make(chan result, 1)
	start := time.Now()
	go func() {
		cred, err := store.Credential(ctx, s.h.Known.Clone())
		done <- result{cred, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(PromptCancel):
		t.Fatalf("Credential did not return within %v of its context being cancelled", PromptCancel)
	}
	t.Logf("returned after %v: err = %v", time.Since(start).Round(time.Millisecond), r.err)
	switch {
	case s.h.NoIO && r.err != nil:
		t.Errorf("a store without I/O failed with a cancelled context: %v", r.err)
	case !s.h.NoIO && r.err == nil:
		t.Error("Credential succeeded with a cancelled context (set Harness.NoIO if the store does no I/O)")
	}
	if r.err == nil {
		s.checkShape(t, r.cred)
		s.release(t, s.ctx(t), r.cred)
	}
	checkNothingOnError(t, r.cred, r.err)
}

func (s *suite) testNilInfo(t *testing.T) {
	store := s.h.New(t)
	var (
		cred     credstore.Credential
		err      error
		panicked any
	)
	func() {
		defer func() { panicked = recover() }()
		cred, err = store.Credential(s.ctx(t), nil)
	}()
	if panicked != nil {
		t.Fatalf("Credential(nil) panicked: %v", panicked)
	}
	if err == nil {
		t.Error("Credential(nil) returned no error")
		s.release(t, s.ctx(t), cred)
	}
	checkNothingOnError(t, cred, err)
}

func (s *suite) testInfoUnchanged(t *testing.T) {
	store := s.h.New(t)
	for _, info := range []*session.Info{s.h.Known, s.h.Unknown} {
		arg := info.Clone()
		cred, err := store.Credential(s.ctx(t), arg)
		if err == nil {
			s.release(t, s.ctx(t), cred)
		}
		if !reflect.DeepEqual(arg, info.Clone()) {
			t.Errorf("Credential modified the session it was given (subject %q)", info.Identity.Subject)
		}
	}
}

func (s *suite) testConcurrent(t *testing.T) {
	store := s.h.New(t)
	var (
		mu        sync.Mutex
		users     = map[string]int{}
		passwords = map[string]int{}
		wg        sync.WaitGroup
	)
	ctx := s.ctx(t)
	for g := range s.h.Goroutines {
		wg.Go(func() {
			for c := range s.h.Calls {
				cred, err := store.Credential(ctx, s.h.Known.Clone())
				if err != nil {
					t.Errorf("goroutine %d, call %d: %v", g, c, err)
					return
				}
				s.checkShape(t, cred)
				mu.Lock()
				users[cred.User]++
				passwords[cred.Password.Reveal()]++
				mu.Unlock()
				if s.h.Verify != nil {
					if err := s.h.Verify(ctx, cred); err != nil {
						t.Errorf("goroutine %d, call %d: Verify rejected %q: %v", g, c, cred.User, err)
					}
				}
				s.release(t, ctx, cred)
			}
		})
	}
	wg.Wait()
	if !s.h.Distinct {
		return
	}
	want := s.h.Goroutines * s.h.Calls
	if len(users) != want {
		t.Errorf("%d calls returned %d distinct users, want every one distinct", want, len(users))
	}
	if len(passwords) != want {
		t.Errorf("%d calls returned %d distinct passwords, want every one distinct", want, len(passwords))
	}
}

func (s *suite) testSecretsNotPrinted(t *testing.T) {
	store := s.h.New(t)
	cred := s.issue(t, store)
	defer s.release(t, s.ctx(t), cred)
	password := cred.Password.Reveal()
	if password == "" {
		t.Fatal("no password to look for")
	}
	shown := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
		shown["fmt "+verb+" of the Credential"] = fmt.Sprintf(verb, cred)
		shown["fmt "+verb+" of *Credential"] = fmt.Sprintf(verb, &cred)
		shown["fmt "+verb+" of the Password"] = fmt.Sprintf(verb, cred.Password)
		shown["fmt "+verb+" of a struct holding it"] = fmt.Sprintf(verb, struct{ C credstore.Credential }{cred})
	}
	shown["fmt.Sprint"] = fmt.Sprint(cred, cred.Password)
	shown["fmt.Errorf %v"] = fmt.Errorf("issuing %v", cred).Error()
	shown["fmt.Errorf %w"] = fmt.Errorf("issuing %v: %w", cred.Password, errors.New("x")).Error()
	for name, v := range map[string]any{
		"the Credential": cred, "*Credential": &cred, "the Password": cred.Password,
		"a map holding it": map[string]any{"cred": cred, "password": cred.Password},
	} {
		b, err := json.Marshal(v)
		if err != nil {
			// A Release hook makes the Credential unmarshalable: fine,
			// as long as the error does not show the password.
			shown["json.Marshal error of "+name] = err.Error()
		} else {
			shown["json.Marshal of "+name] = string(b)
		}
	}
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
		"slog JSON": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
	} {
		var b bytes.Buffer
		log := slog.New(h(&b))
		log.Info("credential", "cred", cred, "ptr", &cred, "password", cred.Password, slog.Group("g", "user", cred.User, "password", cred.Password))
		log.With("cred", cred).Error("again")
		shown[name] = b.String()
	}
	for where, out := range shown {
		if strings.Contains(out, password) {
			t.Errorf("%s shows the password", where) // never the output: it holds the password
		}
	}
}

func (s *suite) testReleaseOnce(t *testing.T) {
	store := s.h.New(t)
	cred := s.issue(t, store)
	if cred.Release == nil {
		if s.h.RevokedOnRelease {
			t.Error("RevokedOnRelease is set but the credential has no Release hook")
		}
		return
	}
	if s.h.Verify != nil {
		if err := s.h.Verify(s.ctx(t), cred); err != nil {
			t.Errorf("Verify rejected the credential before Release: %v", err)
		}
	}
	if err := cred.Release(s.ctx(t), session.EndClientExit); err != nil {
		t.Errorf("Release: %v", err)
	}
	if s.h.RevokedOnRelease {
		if err := s.h.Verify(s.ctx(t), cred); err == nil {
			t.Error("the credential still works after Release")
		}
	}
}
