package proxy

import (
	"strings"
	"testing"

	"github.com/pgwarden/pgwarden/internal/wire"
	"github.com/pgwarden/pgwarden/session"
)

func startupOf(major, minor uint16, kv ...string) *wire.Startup {
	st := &wire.Startup{Major: major, Minor: minor}
	for i := 0; i+1 < len(kv); i += 2 {
		st.Params = append(st.Params, wire.Param{Name: kv[i], Value: kv[i+1]})
	}
	return st
}

func TestCheckStartupCanonicalisesAsTheServerWould(t *testing.T) {
	long := strings.Repeat("é", 40) // 80 bytes: the server keeps 63, at a character boundary
	tests := []struct {
		name         string
		st           *wire.Startup
		wantUser     string
		wantDatabase string
	}{
		{"an empty database means the user name", startupOf(3, 0, "user", "alice", "database", ""), "alice", "alice"},
		{"a missing database means the user name", startupOf(3, 0, "user", "alice"), "alice", "alice"},
		{"long names are truncated to 63 bytes", startupOf(3, 0, "user", long, "database", long), long[:62], long[:62]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := checkStartup(tc.st, nil)
			if err != nil {
				t.Fatal(err)
			}
			if req.user != tc.wantUser || req.database != tc.wantDatabase {
				t.Fatalf("user %q database %q, want %q %q", req.user, req.database, tc.wantUser, tc.wantDatabase)
			}
		})
	}
}

func TestCheckStartupRefuses(t *testing.T) {
	tests := []struct {
		name string
		st   *wire.Startup
		code string
	}{
		{"protocol 2", startupOf(2, 0, "user", "a"), session.CodeFeatureNotSupported},
		{"protocol 4", startupOf(4, 0, "user", "a"), session.CodeFeatureNotSupported},
		{"no user", startupOf(3, 0, "database", "d"), session.CodeInvalidAuthorization},
		{"physical replication", startupOf(3, 0, "user", "a", "replication", "true"), session.CodeInsufficientPrivilege},
		{"logical replication", startupOf(3, 0, "user", "a", "replication", "database"), session.CodeInsufficientPrivilege},
		{"options", startupOf(3, 0, "user", "a", "options", "-c search_path=evil"), session.CodeInsufficientPrivilege},
		{"search_path", startupOf(3, 0, "user", "a", "search_path", "evil"), session.CodeInsufficientPrivilege},
		{"session_authorization", startupOf(3, 0, "user", "a", "session_authorization", "postgres"), session.CodeInsufficientPrivilege},
		{"a multibyte encoding that hides quotes", startupOf(3, 0, "user", "a", "client_encoding", "SJIS"), session.CodeFeatureNotSupported},
		{"an oversize value", startupOf(3, 0, "user", "a", "application_name", strings.Repeat("x", 2000)), session.CodeInvalidParameterValue},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := checkStartup(tc.st, nil)
			if err == nil || err.Code != tc.code {
				t.Fatalf("got %v, want SQLSTATE %s", err, tc.code)
			}
		})
	}
}

func TestCheckStartupAllows(t *testing.T) {
	st := startupOf(3, 2, "user", "a", "DATESTYLE", "ISO", "client_encoding", "utf-8", "replication", "off",
		"options", "", "_pq_.compression", "on", "search_path", "app")
	req, err := checkStartup(st, []string{"search_path"})
	if err != nil {
		t.Fatal(err)
	}
	if req.params["DateStyle"] != "ISO" || req.params["client_encoding"] != "utf-8" || req.params["search_path"] != "app" {
		t.Fatalf("params = %v", req.params)
	}
	if _, ok := req.params["replication"]; ok {
		t.Fatal("replication=off must not be forwarded")
	}
	if !req.newerMinor || len(req.unsupportedOptions) != 1 || req.unsupportedOptions[0] != "_pq_.compression" {
		t.Fatalf("negotiation: newer %v options %v", req.newerMinor, req.unsupportedOptions)
	}
	if len(req.params) != 3 {
		t.Fatalf("unexpected parameters forwarded: %v", req.params)
	}
}
