package session

import (
	"context"
	"errors"
)

// Recorder receives the events of every session. See the package
// documentation for the contract an implementation must keep.
type Recorder interface {
	// Record keeps ev, or returns an error saying why it could not.
	Record(ctx context.Context, ev Event) error
}

// QuickRecorder is implemented by a Recorder that knows, for some kinds of
// events, that Record returns at once: within microseconds, without
// waiting for a disk's sync, a network or a lock held across one. The
// proxy, which serves other sessions from the recording session's thread,
// hands that thread over before a Record that may wait, and skips the
// hand-over (a goroutine start and a thread wake-up) before a quick one.
// A Recorder that does not implement it may wait for every event. Quick
// is a promise about time only: a quick Record may still fail.
type QuickRecorder interface {
	Recorder
	// Quick reports whether Record of an event of kind k returns at once.
	Quick(k EventKind) bool
}

// IsQuick reports whether r promises that Record of an event of kind k
// returns at once (see QuickRecorder).
func IsQuick(r Recorder, k EventKind) bool {
	q, ok := r.(QuickRecorder)
	return ok && q.Quick(k)
}

// RecorderFunc adapts a function to a Recorder.
type RecorderFunc func(ctx context.Context, ev Event) error

// Record calls f(ctx, ev).
func (f RecorderFunc) Record(ctx context.Context, ev Event) error { return f(ctx, ev) }

// Discard is a Recorder that keeps nothing and never fails. Choosing it is
// choosing to have no record of what sessions did.
var Discard Recorder = discard{}

type discard struct{}

func (discard) Record(context.Context, Event) error { return nil }

func (discard) Quick(EventKind) bool { return true }

// Multi returns a Recorder that records every event to each of recorders in
// order, and fails if any of them fails (the error joins every failure).
// It is quick for the kinds of events every one of recorders is quick for
// (see QuickRecorder).
func Multi(recorders ...Recorder) Recorder {
	return multi(append([]Recorder(nil), recorders...))
}

type multi []Recorder

func (m multi) Record(ctx context.Context, ev Event) error {
	var errs []error
	for _, r := range m {
		if err := r.Record(ctx, ev); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m multi) Quick(k EventKind) bool {
	for _, r := range m {
		if !IsQuick(r, k) {
			return false
		}
	}
	return true
}

// BestEffort returns a Recorder that passes events to r and never fails:
// when r fails, onError (if not nil) is told, and the session carries on
// unrecorded. Use it only where losing the record is acceptable: it turns off
// the fail-closed guarantee. It is as quick as r (see QuickRecorder).
func BestEffort(r Recorder, onError func(Event, error)) Recorder {
	return bestEffort{r: r, onError: onError}
}

type bestEffort struct {
	r       Recorder
	onError func(Event, error)
}

func (b bestEffort) Record(ctx context.Context, ev Event) error {
	if err := b.r.Record(ctx, ev); err != nil && b.onError != nil {
		b.onError(ev, err)
	}
	return nil
}

func (b bestEffort) Quick(k EventKind) bool { return IsQuick(b.r, k) }
