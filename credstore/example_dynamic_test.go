package credstore_test

import (
	"context"
	"log"
	"log/slog"
	"os"
	"time"

	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/session"
)

// Each session gets its own short-lived role, member of the template
// roles its identity maps to. The admin role needs CREATEROLE, and should
// not be a superuser.
func ExampleNewDynamic() {
	ctx := context.Background()
	store, err := credstore.NewDynamic(ctx, credstore.DynamicConfig{
		AdminDSN: session.NewSecret(os.Getenv("PGWARDEN_ADMIN_DSN")),
		Templates: []credstore.Template{
			// Analysts read; the on-call engineer also writes.
			{Groups: []string{"analysts"}, Roles: []string{"app_reader"}},
			{Subjects: []string{"oncall@example.com"}, Roles: []string{"app_reader", "app_writer"}},
		},
		TTL:             30 * time.Minute,
		Prefix:          "pgw_",
		ConnectionLimit: 1,
		GatewayID:       "gateway-eu-1",
		// Without Leases, leases go to the table pgwarden_leases.
		Leases:        credstore.NewFileLeases("/var/lib/pgwarden/leases.json"),
		SweepInterval: time.Minute,
		Logger:        slog.Default(),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	info := &session.Info{Identity: session.Identity{Subject: "alice", Groups: []string{"analysts"}}, Database: "app"}
	cred, err := store.Credential(ctx, info)
	if err != nil {
		log.Fatal(err)
	}
	// The proxy logs in as cred.User and calls Release when the session ends.
	defer cred.Release(ctx, session.EndClientExit)
	log.Printf("lease %s until %v", cred.Lease, cred.ExpiresAt)
}
