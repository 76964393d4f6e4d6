package credstore_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/session"
)

// Each session gets its own short-lived login role, member of the
// template roles its identity maps to, dropped when the session ends. The
// admin role needs CREATEROLE, and should not be a superuser.
func ExampleNewDynamic() {
	dir, err := os.MkdirTemp("", "pgwarden")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.Background()
	store, err := credstore.NewDynamic(ctx, credstore.DynamicConfig{
		AdminDSN: exampleAdminDSN(), // e.g. session.NewSecret(os.Getenv("PGWARDEN_ADMIN_DSN"))
		Templates: []credstore.Template{
			// Analysts read; the on-call engineer also writes.
			{Groups: []string{"analysts"}, Roles: []string{"app_reader"}},
			{Subjects: []string{"oncall@example.com"}, Roles: []string{"app_reader", "app_writer"}},
		},
		TTL:       30 * time.Minute,
		GatewayID: "gateway-eu-1",
		// Without Leases, leases go to the table pgwarden_leases.
		Leases: credstore.NewFileLeases(filepath.Join(dir, "leases.json")),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// What the proxy does for each session: ask for a credential, log in
	// with it, and release it when the session ends.
	info := &session.Info{Identity: session.Identity{Subject: "alice", Groups: []string{"analysts"}}, Database: "app"}
	cred, err := store.Credential(ctx, info)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.HasPrefix(cred.User, "pgw_"), cred.Lease == cred.User, time.Until(cred.ExpiresAt).Round(time.Minute))
	fmt.Println("logs in:", exampleLogsIn(cred))

	if err := cred.Release(ctx, session.EndClientExit); err != nil {
		log.Fatal(err)
	}
	fmt.Println("logs in after Release:", exampleLogsIn(cred))

	// The lease stays in the store, for access reviews.
	leases, err := store.Leases(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range leases {
		fmt.Println(l.Identity.Subject, l.Templates, l.Active(), l.EndReason)
	}
	// Output:
	// true true 30m0s
	// logs in: true
	// logs in after Release: false
	// alice [app_reader] false session-ended
}
