// Package credstoretest is a conformance suite for credstore.Store
// implementations: it checks, from the outside, the contract the package
// credstore documents (concurrency, context, ownership, errors, secrets).
//
// # How to run it against your Store
//
// Write a test in your package that fills a Harness and calls Run:
//
//	func TestMyStoreConformance(t *testing.T) {
//		credstoretest.Run(t, credstoretest.Harness{
//			// A fresh store for each subtest; register its cleanup on t.
//			New: func(t *testing.T) credstore.Store {
//				s, err := mystore.New(...)
//				if err != nil {
//					t.Fatal(err)
//				}
//				t.Cleanup(func() { s.Close() })
//				return s
//			},
//			// An identity the store has a credential for, and one it has none for.
//			Known:   &session.Info{Identity: session.Identity{Subject: "alice", Groups: []string{"analysts"}}, Database: "app"},
//			Unknown: &session.Info{Identity: session.Identity{Subject: "mallory"}, Database: "app"},
//			// Optional: prove that a credential logs in (for example with pgx).
//			Verify: func(ctx context.Context, cred credstore.Credential) error { ... },
//			// Say what the store is: does it do I/O? Does every call issue
//			// a new credential? Does Release revoke it?
//			NoIO:             false,
//			Distinct:         true,
//			RevokedOnRelease: true,
//		})
//	}
//
// Run it with the race detector (go test -race): the concurrency subtest
// is only as good as the detector watching it.
//
// The suite never prints a credential's password, not even when a check
// fails: failures name the check, not the secret.
package credstoretest
