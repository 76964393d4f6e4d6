// Package policytest unit-tests policies in-process, with no database: it
// analyses SQL exactly as the gateway does (the same parser, the same
// gateway rules, the same fail-closed handling of a policy's answer) and
// asks the policy, so a test states "this statement, for this identity, at
// this time, gets this verdict from this rule".
//
// A Session remembers what the gateway remembers between statements
// (SQL-level PREPAREs, cursors, search_path changes), so sequences such as
// PREPARE then EXECUTE are judged as they would be on the wire.
//
//	s := policytest.New(t, myPolicy).As(session.Identity{Subject: "ci-bot", Groups: []string{"ci"}})
//	s.Expect("DELETE FROM orders", policy.Block, "read-only")
package policytest
