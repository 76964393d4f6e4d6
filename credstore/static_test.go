package credstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/session"
)

func TestStaticPicksTheFirstMatchingEntry(t *testing.T) {
	store, err := credstore.NewStatic(
		credstore.StaticEntry{User: "ops_role", Password: session.NewSecret("p1"), Groups: []string{"ops"}},
		credstore.StaticEntry{User: "carol_role", Password: session.NewSecret("p2"), Subjects: []string{"carol"}},
		credstore.StaticEntry{User: "ro_role", Password: session.NewSecret("p3"), Groups: []string{"analysts", "ops"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		id   session.Identity
		want string
	}{
		{session.Identity{Subject: "dan", Groups: []string{"ops"}}, "ops_role"},
		{session.Identity{Subject: "carol", Groups: []string{"analysts"}}, "carol_role"},
		{session.Identity{Subject: "erin", Groups: []string{"analysts"}}, "ro_role"},
	} {
		cred, err := store.Credential(context.Background(), &session.Info{Identity: tc.id})
		if err != nil || cred.User != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.id.Subject, cred.User, err, tc.want)
		}
	}
	_, err = store.Credential(context.Background(), &session.Info{Identity: session.Identity{Subject: "mallory"}})
	if !errors.Is(err, credstore.ErrNoCredential) {
		t.Fatalf("an identity that matches nothing: %v", err)
	}
}

func TestStaticEntryWithoutConditionsMatchesEveryone(t *testing.T) {
	store, _ := credstore.NewStatic(credstore.StaticEntry{User: "app", Password: session.NewSecret("p")})
	cred, err := store.Credential(context.Background(), &session.Info{Identity: session.Identity{Subject: "anyone"}})
	if err != nil || cred.User != "app" {
		t.Fatalf("%q, %v", cred.User, err)
	}
}

func TestNewStaticRefusesIncompleteEntries(t *testing.T) {
	if _, err := credstore.NewStatic(credstore.StaticEntry{User: "app"}); err == nil {
		t.Fatal("an entry without a password was accepted")
	}
	if _, err := credstore.NewStatic(credstore.StaticEntry{Password: session.NewSecret("p")}); err == nil {
		t.Fatal("an entry without a user was accepted")
	}
}
