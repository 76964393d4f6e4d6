package targets

import "testing"

func TestParseForwardOutput(t *testing.T) {
	for _, tc := range []struct {
		out, addr, mode string
		ok              bool
	}{
		{"", "", "", false},
		{"listening 127.0.0.1:41234", "", "", false}, // not a whole line yet
		{"listening 127.0.0.1:41234\n", "127.0.0.1:41234", "", true},
		{"listening 127.0.0.1:41234\nrelay: internal/evloop, 1 shard(s), GOMAXPROCS=2\n",
			"127.0.0.1:41234", "internal/evloop, 1 shard(s), GOMAXPROCS=2", true},
		{"listening 127.0.0.1:1\nrelay: x\nbench forward: dial upstream: refused\nlistening 1.2.3.4:5\n",
			"127.0.0.1:1", "x", true},
		{"bench forward: listen tcp: address in use\n", "", "", false},
	} {
		addr, mode, ok := parseForwardOutput([]byte(tc.out))
		if addr != tc.addr || mode != tc.mode || ok != tc.ok {
			t.Errorf("parseForwardOutput(%q) = %q, %q, %v; want %q, %q, %v", tc.out, addr, mode, ok, tc.addr, tc.mode, tc.ok)
		}
	}
}

func TestSplitListenAddr(t *testing.T) {
	host, port, err := splitListenAddr("127.0.0.1:41234")
	if err != nil || host != "127.0.0.1" || port != 41234 {
		t.Errorf("got %q, %d, %v", host, port, err)
	}
	if host, port, err := splitListenAddr("[::1]:5"); err != nil || host != "::1" || port != 5 {
		t.Errorf("IPv6: got %q, %d, %v", host, port, err)
	}
	for _, bad := range []string{"", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:x", ":5432", "127.0.0.1:70000"} {
		if _, _, err := splitListenAddr(bad); err == nil {
			t.Errorf("splitListenAddr(%q): no error", bad)
		}
	}
}
