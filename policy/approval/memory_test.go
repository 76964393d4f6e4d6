package approval_test

import (
	"testing"

	"github.com/pgwarden/pgwarden/policy/approval"
)

func TestMemory(t *testing.T) {
	t.Parallel()
	testStore(t, func(t *testing.T, opts approval.Options) approval.Store {
		s := approval.NewMemory(opts)
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}
