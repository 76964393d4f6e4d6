// Package policyexample shows how to write a statement policy in Go and
// unit-test it with package policytest, without a database: run
// `go test ./examples/policytest`.
//
// The policy (see Policy) is what a team might put in front of a
// production database: analysts read, but never the secrets table; a
// scheduled CI job may only run in its window; unbounded writes are
// refused; an agent that calls server-administration functions is cut off
// and its whole delegation chain suspended for an hour.
package policyexample
