package proxy

import (
	"strings"
	"testing"

	"github.com/pgwarden/pgwarden/session"
)

// TestClientAppName: the application_name the server reports maps back to
// the client's name only when the gateway made it for this identity,
// including when the server's length cut it.
func TestClientAppName(t *testing.T) {
	alice := session.Identity{Subject: "alice", Chain: []session.Actor{{Subject: "agent"}}}
	edge := session.Identity{Subject: strings.Repeat("e", 53)} // "pgwarden:" + 53 = 62
	long := session.Identity{Subject: strings.Repeat("s", 58)} // "pgwarden:" + 58 = 67 > 63
	for _, c := range []struct {
		id          session.Identity
		value, want string
		ok          bool
	}{
		{alice, "pgwarden:alice via agent", "", true},
		{alice, "pgwarden:alice via agent | psql", "psql", true},
		{alice, taggedAppName(alice, "an application name that is far too long for the server"), "an application name that is far too ", true},
		{alice, "pgwarden:alice via agent |", "", false}, // not cut: not ours
		{edge, taggedAppName(edge, "psql"), "", true},    // cut inside the separator
		{alice, "pgwarden:alice", "", false},
		{alice, "pgwarden:alice via agentX", "", false},
		{alice, "pgwarden:mallory | psql", "", false},
		{alice, "psql", "", false},
		{long, taggedAppName(long, "x"), "", true},
		{long, taggedAppName(long, ""), "", true},
	} {
		got, ok := clientAppName(c.id, c.value)
		if got != c.want || ok != c.ok {
			t.Errorf("clientAppName(%q, %q) = %q, %v; want %q, %v", c.id.Subject, c.value, got, ok, c.want, c.ok)
		}
	}
}
