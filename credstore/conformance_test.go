package credstore_test

import (
	"path/filepath"
	"testing"

	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/credstore/credstoretest"
	"github.com/pgwarden/pgwarden/session"
)

// Static passes the conformance suite, its credential logging in to the
// cluster as a fixed role.
func TestStaticConformance(t *testing.T) {
	setup(t)
	credstoretest.Run(t, credstoretest.Harness{
		New: func(t *testing.T) credstore.Store {
			s, err := credstore.NewStatic(credstore.StaticEntry{User: staticRole, Password: session.NewSecret(staticPassword),
				Groups: []string{"analysts"}})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
		Known:   infoFor("alice", "analysts"),
		Unknown: infoFor("mallory", "guests"),
		Verify:  verifyLogin,
		NoIO:    true,
	})
}

// Dynamic passes the conformance suite: every call is a new role that
// logs in, and that Release drops.
func TestDynamicConformance(t *testing.T) {
	setup(t)
	credstoretest.Run(t, credstoretest.Harness{
		New: func(t *testing.T) credstore.Store {
			return newDynamic(t, credstore.DynamicConfig{
				Templates: []credstore.Template{{Groups: []string{"analysts"}, Roles: []string{"app_reader"}}},
				Prefix:    "pgwt_conf_",
				Leases:    credstore.NewFileLeases(filepath.Join(t.TempDir(), "leases.json")),
			})
		},
		Known:            infoFor("alice", "analysts"),
		Unknown:          infoFor("mallory", "guests"),
		Verify:           verifyLogin,
		Distinct:         true,
		RevokedOnRelease: true,
	})
	if left := rolesLike(t, "pgwt_conf_"); len(left) != 0 {
		t.Errorf("roles left behind: %v", left)
	}
}
