package credstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/session"
)

// sampleLease is a lease with every field set.
func sampleLease(role string) credstore.Lease {
	issued := time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)
	return credstore.Lease{
		Role: role, Gateway: "gw-1", Database: "app",
		Identity: session.Identity{Subject: "alice", Issuer: "https://idp.example", Name: "Alice", Email: "alice@example.com",
			Groups: []string{"analysts", "ops"}, Method: "oidc", ExpiresAt: issued.Add(2 * time.Hour),
			Chain: []session.Actor{{Subject: "agent-1", Issuer: "https://idp.example"}, {Subject: "agent-2"}}},
		Templates: []string{"app_reader", "app_writer"},
		IssuedAt:  issued, ExpiresAt: issued.Add(time.Hour),
	}
}

// sameLease compares leases field by field (times with Equal).
func sameLease(a, b credstore.Lease) bool {
	ia, ib := a.Identity, b.Identity
	return a.Role == b.Role && a.Gateway == b.Gateway && a.Database == b.Database &&
		ia.Subject == ib.Subject && ia.Issuer == ib.Issuer && ia.Name == ib.Name && ia.Email == ib.Email &&
		slices.Equal(ia.Groups, ib.Groups) && ia.Method == ib.Method && ia.ExpiresAt.Equal(ib.ExpiresAt) &&
		slices.Equal(ia.Chain, ib.Chain) && slices.Equal(a.Templates, b.Templates) &&
		a.IssuedAt.Equal(b.IssuedAt) && a.ExpiresAt.Equal(b.ExpiresAt) && a.EndedAt.Equal(b.EndedAt) &&
		a.EndReason == b.EndReason
}

func listLeases(t testing.TB, s credstore.LeaseStore) []credstore.Lease {
	t.Helper()
	ls, err := s.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return ls
}

func findLease(ls []credstore.Lease, role string) (credstore.Lease, bool) {
	i := slices.IndexFunc(ls, func(l credstore.Lease) bool { return l.Role == role })
	if i < 0 {
		return credstore.Lease{}, false
	}
	return ls[i], true
}

// dirEntries lists the names in dir.
func dirEntries(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// FileLeases round-trips every field, replaces a lease by its role, keeps
// everything across reopening, and leaves no temporary file behind.
func TestFileLeasesRoundTrip(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "leases.json")
	s := credstore.NewFileLeases(path)
	if ls := listLeases(t, s); len(ls) != 0 {
		t.Fatalf("a store without a file lists %d leases", len(ls))
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("List created the file (%v)", err)
	}

	a, b := sampleLease("pgw_a"), sampleLease("pgw_b")
	b.Gateway, b.IssuedAt = "gw-2", b.IssuedAt.Add(time.Minute)
	for _, l := range []credstore.Lease{a, b} {
		if err := s.Put(ctx, l); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
	ls := listLeases(t, s)
	if len(ls) != 2 {
		t.Fatalf("%d leases, want 2", len(ls))
	}
	for _, want := range []credstore.Lease{a, b} {
		if got, ok := findLease(ls, want.Role); !ok || !sameLease(got, want) || !got.Active() {
			t.Errorf("lease %s: got %+v, want %+v", want.Role, got, want)
		}
	}

	// Put replaces the lease with the same role.
	ended := a
	ended.EndedAt, ended.EndReason = time.Now().UTC().Truncate(time.Millisecond), "session-ended"
	if err := s.Put(ctx, ended); err != nil {
		t.Fatal(err)
	}
	ls = listLeases(t, s)
	if len(ls) != 2 {
		t.Fatalf("%d leases after replacing one, want 2", len(ls))
	}
	if got, _ := findLease(ls, a.Role); !sameLease(got, ended) || got.Active() {
		t.Errorf("replaced lease: got %+v, want %+v", got, ended)
	}

	// Reopening reads the same leases.
	ls = listLeases(t, credstore.NewFileLeases(path))
	if len(ls) != 2 {
		t.Fatalf("%d leases after reopening, want 2", len(ls))
	}
	for _, want := range []credstore.Lease{ended, b} {
		if got, ok := findLease(ls, want.Role); !ok || !sameLease(got, want) {
			t.Errorf("lease %s after reopening: got %+v, want %+v", want.Role, got, want)
		}
	}

	if names := dirEntries(t, dir); !slices.Equal(names, []string{"leases.json"}) {
		t.Errorf("the directory holds %v, want only leases.json (no temporary files)", names)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("the lease file (identities) is mode %v, want it private to its owner", fi.Mode().Perm())
	}
}

// Ended leases older than 30 days are dropped on the next Put; active and
// recently ended ones are kept, however old.
func TestFileLeasesForgetOldEndedLeases(t *testing.T) {
	ctx := context.Background()
	s := credstore.NewFileLeases(filepath.Join(t.TempDir(), "leases.json"))
	old := sampleLease("pgw_old")
	old.EndedAt, old.EndReason = time.Now().Add(-31*24*time.Hour), "expired"
	recent := sampleLease("pgw_recent")
	recent.EndedAt, recent.EndReason = time.Now().Add(-29*24*time.Hour), "expired"
	stillActive := sampleLease("pgw_active")
	stillActive.IssuedAt = time.Now().Add(-90 * 24 * time.Hour)
	for _, l := range []credstore.Lease{old, recent, stillActive, sampleLease("pgw_new")} {
		if err := s.Put(ctx, l); err != nil {
			t.Fatal(err)
		}
	}
	ls := listLeases(t, s)
	var roles []string
	for _, l := range ls {
		roles = append(roles, l.Role)
	}
	slices.Sort(roles)
	if want := []string{"pgw_active", "pgw_new", "pgw_recent"}; !slices.Equal(roles, want) {
		t.Errorf("leases kept: %v, want %v", roles, want)
	}
}

// Concurrent Puts on one FileLeases lose nothing.
func TestFileLeasesConcurrentPuts(t *testing.T) {
	dir := t.TempDir()
	s := credstore.NewFileLeases(filepath.Join(dir, "leases.json"))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 4 {
				if err := s.Put(context.Background(), sampleLease(fmt.Sprintf("pgw_%d_%d", i, j))); err != nil {
					t.Error(err)
				}
				if _, err := s.List(context.Background()); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if n := len(listLeases(t, s)); n != 32 {
		t.Errorf("%d leases, want 32", n)
	}
	if names := dirEntries(t, dir); !slices.Equal(names, []string{"leases.json"}) {
		t.Errorf("the directory holds %v, want only leases.json", names)
	}
}

// A corrupt lease file is an error naming the file, for List and Put, and
// Put does not overwrite it (the leases in it may be the only record of
// live roles).
func TestFileLeasesCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "leases.json")
	if err := os.WriteFile(path, []byte(`[{"role": "pgw_x", `), 0o600); err != nil {
		t.Fatal(err)
	}
	s := credstore.NewFileLeases(path)
	if _, err := s.List(context.Background()); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("List of a corrupt file: %v", err)
	}
	if err := s.Put(context.Background(), sampleLease("pgw_y")); err == nil {
		t.Error("Put over a corrupt file succeeded")
	}
	if b, _ := os.ReadFile(path); string(b) != `[{"role": "pgw_x", ` {
		t.Error("Put overwrote the corrupt file")
	}
}

// A Dynamic store on a FileLeases keeps its leases in the file, without
// any password.
func TestDynamicWithFileLeases(t *testing.T) {
	ctx := testContext(t)
	path := filepath.Join(t.TempDir(), "leases.json")
	d := newDynamic(t, credstore.DynamicConfig{Prefix: "pgwt_file_", Leases: credstore.NewFileLeases(path)})
	cred := issue(t, d, infoFor("alice"))
	ls := listLeases(t, credstore.NewFileLeases(path))
	if l, ok := findLease(ls, cred.User); !ok || !l.Active() || l.Gateway != "gw-"+t.Name() {
		t.Errorf("the file holds %+v, want the active lease of %s", ls, cred.User)
	}
	checkFileHasNoSecrets(t, path, cred)
	if err := cred.Release(ctx, session.EndClientExit); err != nil {
		t.Fatal(err)
	}
	if l, _ := findLease(listLeases(t, credstore.NewFileLeases(path)), cred.User); l.Active() || l.EndReason != "session-ended" {
		t.Errorf("after Release the file holds %+v", l)
	}
	checkFileHasNoSecrets(t, path, cred)
}

// checkFileHasNoSecrets fails t if the file at path holds a password of
// creds.
func checkFileHasNoSecrets(t testing.TB, path string, creds ...credstore.Credential) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range creds {
		if !strings.Contains(string(b), c.User) {
			t.Errorf("the lease file does not name %s", c.User)
		}
		checkNoSecret(t, "the lease file", string(b), c.Password.Reveal())
	}
}
