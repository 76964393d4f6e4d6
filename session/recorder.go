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

// RecorderFunc adapts a function to a Recorder.
type RecorderFunc func(ctx context.Context, ev Event) error

// Record calls f(ctx, ev).
func (f RecorderFunc) Record(ctx context.Context, ev Event) error { return f(ctx, ev) }

// Discard is a Recorder that keeps nothing and never fails. Choosing it is
// choosing to have no record of what sessions did.
var Discard Recorder = discard{}

type discard struct{}

func (discard) Record(context.Context, Event) error { return nil }

// Multi returns a Recorder that records every event to each of recorders in
// order, and fails if any of them fails (the error joins every failure).
func Multi(recorders ...Recorder) Recorder {
	rs := append([]Recorder(nil), recorders...)
	return RecorderFunc(func(ctx context.Context, ev Event) error {
		var errs []error
		for _, r := range rs {
			if err := r.Record(ctx, ev); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	})
}

// BestEffort returns a Recorder that passes events to r and never fails:
// when r fails, onError (if not nil) is told, and the session carries on
// unrecorded. Use it only where losing the record is acceptable: it turns off
// the fail-closed guarantee.
func BestEffort(r Recorder, onError func(Event, error)) Recorder {
	return RecorderFunc(func(ctx context.Context, ev Event) error {
		if err := r.Record(ctx, ev); err != nil && onError != nil {
			onError(ev, err)
		}
		return nil
	})
}
