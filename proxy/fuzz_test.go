package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/pgwarden/pgwarden/credstore"
	"github.com/pgwarden/pgwarden/internal/wire"
	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// fuzzSession builds a session whose client and server are in-memory pipes
// that swallow everything, with a policy that refuses statements containing
// "refuse", so that the fuzzers reach the refusal paths too.
func fuzzSession(t testing.TB) *clientSession {
	clientSide, clientPeer := net.Pipe()
	upSide, upPeer := net.Pipe()
	go io.Copy(io.Discard, clientPeer)
	go io.Copy(io.Discard, upPeer)
	t.Cleanup(func() { clientPeer.Close(); upPeer.Close() })
	p := &Proxy{
		Policy: policy.Func(func(_ context.Context, q *policy.Query) (policy.Decision, error) {
			if strings.Contains(q.SQL, "refuse") {
				return policy.Decision{Verdict: policy.Block, Rule: "fuzz"}, nil
			}
			return policy.Decision{Verdict: policy.Allow}, nil
		}),
		Logger: slog.New(slog.DiscardHandler),
	}
	cc := &clientConn{p: p, raw: clientSide, conn: clientSide, rd: wire.NewReader(bytes.NewReader(nil), 0), log: p.logger()}
	lim := Limits{MaxPipeline: 64, MaxPreparedStatements: 16}.effective()
	return newClientSession(cc, &session.Info{ID: "fuzz"}, &upstreamConn{conn: upSide, tx: 'I'},
		credstore.Credential{}, func(session.EndReason) {}, lim)
}

func msg(typ byte, body string) []byte {
	b := binary.BigEndian.AppendUint32([]byte{typ}, uint32(len(body)+4))
	return append(b, body...)
}

// FuzzClientMessages feeds arbitrary client traffic to the frontend relay's
// message handler: it must never panic, and never queue more requests than
// the client sent messages.
func FuzzClientMessages(f *testing.F) {
	f.Add(append(msg('Q', "select 1\x00"), msg('S', "")...))
	f.Add(bytes.Join([][]byte{msg('P', "s1\x00select refuse\x00\x00\x00"), msg('B', "p\x00s1\x00\x00\x00\x00\x00\x00\x00"),
		msg('E', "p\x00\x00\x00\x00\x00"), msg('C', "Ss1\x00"), msg('S', "")}, nil))
	f.Add(append(msg('d', "1\t2\n"), msg('c', "")...))
	f.Add(msg('F', "\x00\x00\x04\xd2\x00\x00\x00\x01\x00\x00\x00\x01\x07\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := fuzzSession(t)
		r := wire.NewReader(bytes.NewReader(data), 1<<16)
		sent := 0
		for {
			m, err := r.Next()
			if err != nil {
				break
			}
			sent++
			if ferr := s.frontendMessage(m); ferr != nil {
				break
			}
			if n := s.pipe.pending(); n > sent {
				t.Fatalf("%d requests queued for %d messages", n, sent)
			}
		}
		s.end(session.EndClientExit, nil)
	})
}

// FuzzServerMessages queues requests described by the first bytes, then
// feeds arbitrary server traffic to the backend relay's message handler: it
// must never panic, whatever the server sends.
func FuzzServerMessages(f *testing.F) {
	f.Add([]byte{byte(opParse), byte(opBind), byte(opExecute), byte(opSync)},
		bytes.Join([][]byte{msg('1', ""), msg('2', ""), msg('D', "\x00\x01\x00\x00\x00\x01x"),
			msg('C', "SELECT 1\x00"), msg('Z', "I")}, nil))
	f.Add([]byte{byte(opQuery), byte(opCopyEnd)},
		bytes.Join([][]byte{msg('G', "\x00\x00\x00"), msg('C', "COPY 1\x00"), msg('Z', "I")}, nil))
	f.Add([]byte{byte(opParse), byte(opSync)},
		bytes.Join([][]byte{msg('E', "SERROR\x00C42601\x00Mx\x00\x00"), msg('Z', "I")}, nil))
	f.Add([]byte{byte(opQuery)}, msg('D', "\x00\x01\xff\xff\xff\xfb"))
	f.Fuzz(func(t *testing.T, ops []byte, data []byte) {
		s := fuzzSession(t)
		for i, k := range ops {
			if i == 64 {
				break
			}
			o := op{kind: opKind(k%uint8(opCopyEnd)) + 1}
			if k&0x80 != 0 {
				o.refused = &policy.Decision{Verdict: policy.Block, Rule: "fuzz"}
			}
			if o.kind == opQuery || o.kind == opExecute {
				o.stmt = &statement{seq: int64(i + 1)}
			}
			s.pipe.tryPush(o)
		}
		r := wire.NewReader(bytes.NewReader(data), 1<<16)
		for {
			m, err := r.Next()
			if err != nil {
				break
			}
			if _, ferr := s.backendMessage(m); ferr != nil {
				break
			}
		}
		s.end(session.EndClientExit, nil)
	})
}
