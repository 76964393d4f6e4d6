package proxy_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgwarden/pgwarden/proxy"
)

func TestHugeDeclaredLengthEndsTheSessionWithoutAllocating(t *testing.T) {
	g := startGateway(t, nil)
	pc := connectRaw(t, g.dsn("alice", alicePassword))
	_, conn := hijack(t, pc)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	conn.Write([]byte{'Q', 0x7f, 0xff, 0xff, 0xff, 's', 'e', 'l', 'e', 'c', 't'})
	e := readFatal(t, conn)
	runtime.ReadMemStats(&after)
	if e == nil || e.Code != "08P01" || e.Severity != "FATAL" {
		t.Fatalf("got %+v, want FATAL 08P01", e)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("the gateway allocated %d MiB for a hostile length", grew>>20)
	}
	connect(t, g.dsn("alice", alicePassword)) // the gateway still serves
}

func TestSSLRequestFollowedByPlaintextIsRefused(t *testing.T) {
	g := startGateway(t, nil)
	c := dialRaw(t, g)
	ssl := []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}
	// The SSLRequest and a plaintext startup packet in a single write: the
	// plaintext must not be taken as if it came over TLS.
	c.Write(append(ssl, startupBytes(t, map[string]string{"user": "alice"})...))
	first := make([]byte, 1)
	if _, err := io.ReadFull(c, first); err != nil {
		t.Fatal(err)
	}
	if first[0] != 'E' {
		t.Fatalf("the gateway answered %q; it must refuse with an error instead of starting TLS", first[0])
	}
}

func TestSSLAndGSSNegotiation(t *testing.T) {
	gssenc := []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30}
	ssl := []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}
	answer := func(c net.Conn, req []byte) byte {
		c.Write(req)
		b := make([]byte, 1)
		if _, err := io.ReadFull(c, b); err != nil {
			t.Fatal(err)
		}
		return b[0]
	}
	withTLS := startGateway(t, nil)
	c := dialRaw(t, withTLS)
	if a := answer(c, gssenc); a != 'N' {
		t.Fatalf("GSSENCRequest answered %q, want N", a)
	}
	if a := answer(c, ssl); a != 'S' {
		t.Fatalf("SSLRequest answered %q, want S", a)
	}
	// Without TLS configured the answer is N, and libpq's default
	// sslmode=prefer then carries on in plaintext.
	withoutTLS := startGateway(t, func(p *proxy.Proxy) { p.TLS = nil })
	if a := answer(dialRaw(t, withoutTLS), ssl); a != 'N' {
		t.Fatalf("SSLRequest without TLS answered %q, want N", a)
	}
	connectRaw(t, withoutTLS.dsn("alice", alicePassword, "sslmode=prefer"))
}

func TestGarbageStartupPackets(t *testing.T) {
	g := startGateway(t, nil)
	version := func(major, minor uint16, rest string) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(8+len(rest)))
		b = binary.BigEndian.AppendUint16(b, major)
		b = binary.BigEndian.AppendUint16(b, minor)
		return append(b, rest...)
	}
	cases := map[string][]byte{
		"random bytes":          []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		"zero length":           {0, 0, 0, 0},
		"huge length":           {0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0},
		"truncated":             version(3, 0, "user\x00alice\x00\x00")[:12],
		"protocol 2":            version(2, 0, "user\x00alice\x00\x00"),
		"no terminator":         version(3, 0, "user\x00alice\x00"),
		"duplicate parameters":  version(3, 0, "user\x00a\x00user\x00b\x00\x00"),
		"long SSLRequest":       {0, 0, 0, 12, 0x04, 0xd2, 0x16, 0x2f, 0, 0, 0, 0},
		"replication requested": version(3, 0, "user\x00alice\x00replication\x00true\x00\x00"),
		"unknown request code":  {0, 0, 0, 8, 0x12, 0x34, 0x56, 0x78},
	}
	for name, pkt := range cases {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, g)
			c.Write(pkt)
			if tcp, ok := c.(*net.TCPConn); ok {
				tcp.CloseWrite()
			}
			if e := readFatal(t, c); e != nil && e.Severity != "FATAL" {
				t.Fatalf("answer %+v", e)
			}
		})
	}
	connect(t, g.dsn("alice", alicePassword)) // still serving
	if g.dials.Load() != 1 {
		t.Fatalf("garbage opened upstream connections: %d dials", g.dials.Load())
	}
}

func TestTruncatedFramesAndUnknownMessages(t *testing.T) {
	g := startGateway(t, nil)
	// A frame cut off by the client closing.
	_, conn := hijack(t, connectRaw(t, g.dsn("alice", alicePassword)))
	conn.Write([]byte{'Q', 0, 0, 0, 100, 's', 'e'})
	conn.(interface{ CloseWrite() error }).CloseWrite()
	readFatal(t, conn)
	// An unknown message type.
	_, conn = hijack(t, connectRaw(t, g.dsn("alice", alicePassword)))
	conn.Write([]byte{'z', 0, 0, 0, 4})
	if e := readFatal(t, conn); e == nil || e.Code != "08P01" {
		t.Fatalf("unknown message: %+v", e)
	}
	// A malformed Query (no terminator).
	_, conn = hijack(t, connectRaw(t, g.dsn("alice", alicePassword)))
	conn.Write([]byte{'Q', 0, 0, 0, 6, 'a', 'b'})
	if e := readFatal(t, conn); e == nil || e.Code != "08P01" {
		t.Fatalf("malformed query: %+v", e)
	}
	waitFor(t, func() bool { return len(g.Sessions()) == 0 })
	connect(t, g.dsn("alice", alicePassword))
}

// fakeServer is a scripted PostgreSQL server that accepts any login and
// answers every Query with the given raw bytes (nil: it hangs up). It stands in for a hostile
// or broken upstream; it is not used to test behaviour against a database.
func fakeServer(t testing.TB, answer []byte) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				be := pgproto3.NewBackend(c, c)
				if _, err := be.ReceiveStartupMessage(); err != nil {
					return
				}
				be.Send(&pgproto3.AuthenticationOk{})
				be.Send(&pgproto3.ParameterStatus{Name: "server_version", Value: "15.0"})
				be.Send(&pgproto3.ParameterStatus{Name: "standard_conforming_strings", Value: "on"})
				be.Send(&pgproto3.ParameterStatus{Name: "client_encoding", Value: "UTF8"})
				be.Send(&pgproto3.BackendKeyData{ProcessID: 1, SecretKey: []byte{1, 2, 3, 4}})
				be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
				be.Flush()
				for {
					m, err := be.Receive()
					if err != nil {
						return
					}
					if q, ok := m.(*pgproto3.Query); ok {
						if strings.Contains(q.String, "current_schemas") {
							// The gateway's login query: no schemas.
							be.Send(&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("unnest"), DataTypeOID: 19, DataTypeSize: 64}}})
							be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 0")})
							be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
							be.Flush()
							continue
						}
						if answer == nil {
							return
						}
						c.Write(answer)
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func TestHostileUpstreamMessages(t *testing.T) {
	rowDesc, _ := (&pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{{Name: []byte("x"), DataTypeOID: 25, DataTypeSize: -1}}}).Encode(nil)
	negativeLength := append(append([]byte{}, rowDesc...), 'D', 0, 0, 0, 10, 0, 1, 0xff, 0xff, 0xff, 0xfb)
	overflowLength := append(append([]byte{}, rowDesc...), 'D', 0, 0, 0, 10, 0, 1, 0x7f, 0xff, 0xff, 0xff)
	keyData, _ := (&pgproto3.BackendKeyData{ProcessID: 9, SecretKey: []byte{9, 9, 9, 9}}).Encode(nil)
	unknown := []byte{'@', 0, 0, 0, 4}
	hugeFrame := []byte{'D', 0x7f, 0xff, 0xff, 0xff}
	for name, answer := range map[string][]byte{
		"DataRow with a negative length": negativeLength,
		"DataRow longer than its frame":  overflowLength,
		"BackendKeyData mid-session":     keyData,
		"unknown message type":           unknown,
		"a frame declaring 2 GiB":        hugeFrame,
	} {
		t.Run(name, func(t *testing.T) {
			addr := fakeServer(t, answer)
			g := startGateway(t, func(p *proxy.Proxy) { p.Upstream.Address = addr })
			c := connectRaw(t, g.dsn("alice", alicePassword))
			err := execErr(testContext(t), c, "select x")
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Severity != "FATAL" || (pgErr.Code != "08P01" && pgErr.Code != "54000") {
				t.Fatalf("err = %v, want FATAL 08P01 (or 54000 for the oversize frame)", err)
			}
			if bytes.Contains([]byte(err.Error()), []byte{9, 9, 9, 9}) {
				t.Fatal("the server's key reached the client")
			}
		})
	}
}

func TestSlowlorisDoesNotHoldMemory(t *testing.T) {
	// A client that declares a large message and trickles it gets only the
	// buffer its bytes need; the session ends at the idle limit of the
	// test, not with a 60 MB allocation.
	g := startGateway(t, nil)
	_, conn := hijack(t, connectRaw(t, g.dsn("alice", alicePassword)))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	hdr := binary.BigEndian.AppendUint32([]byte{'Q'}, 60<<20)
	conn.Write(append(hdr, "select "...))
	time.Sleep(100 * time.Millisecond)
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Fatalf("a 60 MB declaration made the gateway allocate %d MiB up front", grew>>20)
	}
}

func TestNewerProtocolMinorIsNegotiatedDown(t *testing.T) {
	g := startGateway(t, nil)
	c := dialRaw(t, g)
	b, err := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion32,
		Parameters: map[string]string{"user": "alice", "database": "app", "_pq_.future": "on"}}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Write(b)
	fe := pgproto3.NewFrontend(c, io.Discard)
	m, err := fe.Receive()
	if err != nil {
		t.Fatal(err)
	}
	npv, ok := m.(*pgproto3.NegotiateProtocolVersion)
	if !ok || npv.NewestMinorProtocol != 0 || len(npv.UnrecognizedOptions) != 1 || npv.UnrecognizedOptions[0] != "_pq_.future" {
		t.Fatalf("first answer %#v, want NegotiateProtocolVersion for 3.0 naming _pq_.future", m)
	}
	if m, err := fe.Receive(); err != nil {
		t.Fatal(err)
	} else if _, ok := m.(*pgproto3.AuthenticationSASL); !ok {
		t.Fatalf("then %#v, want the SASL exchange", m)
	}
}
