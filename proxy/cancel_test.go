package proxy_test

import (
	"encoding/binary"
	"net"
	"testing"
	"time"
)

func TestCancelThroughTheGateway(t *testing.T) {
	g := startGateway(t, nil)
	ctx := testContext(t)
	conn := connectRaw(t, g.dsn("alice", alicePassword))
	// The client holds the gateway's key, never the server's.
	res := conn.ExecParams(ctx, "select pg_backend_pid()", nil, nil, nil, nil).Read()
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	if conn.PID() == parseOID(t, res.Rows[0][0]) {
		t.Fatal("the client was given the server's process id")
	}

	done := make(chan error, 1)
	started := time.Now()
	go func() {
		_, err := conn.Exec(ctx, "select pg_sleep(30)").ReadAll()
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	cancelAt := time.Now()
	if err := conn.CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if pgCode(err) != "57014" {
			t.Fatalf("cancelled query: %v, want SQLSTATE 57014", err)
		}
		t.Logf("pg_sleep(30) cancelled through the gateway %v after the cancel request (%v after it started)",
			time.Since(cancelAt).Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	case <-ctx.Done():
		t.Fatal("the query was not cancelled")
	}
	if _, err := conn.Exec(ctx, "select 1").ReadAll(); err != nil {
		t.Fatalf("after cancel: %v", err)
	}
}

func TestCancelWithAWrongKeyIsIgnored(t *testing.T) {
	g := startGateway(t, nil)
	ctx := testContext(t)
	conn := connectRaw(t, g.dsn("alice", alicePassword))
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, "select pg_sleep(1)").ReadAll()
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	// Right pid, wrong secret.
	c, err := net.Dial("tcp", g.addr)
	if err != nil {
		t.Fatal(err)
	}
	msg := binary.BigEndian.AppendUint32(nil, 16)
	msg = binary.BigEndian.AppendUint32(msg, 80877102)
	msg = binary.BigEndian.AppendUint32(msg, conn.PID())
	msg = append(msg, ^conn.SecretKey()[0], 0, 0, 0)
	c.Write(msg)
	c.Close()
	if err := <-done; err != nil {
		t.Fatalf("a cancel request with a wrong key cancelled the query: %v", err)
	}
}
