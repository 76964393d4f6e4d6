package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

func frame(typ byte, body []byte) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)+4))
	return append(b, body...)
}

func TestReaderReturnsWholeFramesEvenFromOneByteReads(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 3*initialBuffer+17)
	stream := append(append(frame('Q', []byte("select 1\x00")), frame('d', big)...), frame('S', nil)...)
	r := NewReader(iotest.OneByteReader(bytes.NewReader(stream)), 1<<20)
	want := []struct {
		typ  byte
		body []byte
	}{{'Q', []byte("select 1\x00")}, {'d', big}, {'S', nil}}
	for _, w := range want {
		m, err := r.Next()
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		if m.Type != w.typ || !bytes.Equal(m.Body, w.body) || !bytes.Equal(m.Raw, frame(w.typ, w.body)) {
			t.Fatalf("got %q (%d bytes), want %q (%d bytes)", m.Type, len(m.Body), w.typ, len(w.body))
		}
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
}

func TestReaderRefusesAHugeDeclaredLengthWithoutAllocating(t *testing.T) {
	hostile := []byte{'Q', 0x7f, 0xff, 0xff, 0xff, 's', 'e', 'l'}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	r := NewReader(bytes.NewReader(hostile), 64<<20)
	_, err := r.Next()
	runtime.ReadMemStats(&after)
	var tooLarge *TooLargeError
	if !errors.As(err, &tooLarge) || !tooLarge.BeyondProtocol() {
		t.Fatalf("err = %v, want a TooLargeError beyond the protocol", err)
	}
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Fatalf("reading the hostile header allocated %d bytes", grew)
	}
}

func TestReaderRefusesMessagesOverItsLimit(t *testing.T) {
	r := NewReader(bytes.NewReader(frame('Q', make([]byte, 101))), 100)
	_, err := r.Next()
	var tooLarge *TooLargeError
	if !errors.As(err, &tooLarge) || tooLarge.BeyondProtocol() || tooLarge.Length != 101 || tooLarge.Max != 100 {
		t.Fatalf("err = %#v", err)
	}
}

func TestReaderGrowsWithArrivingBytesNotDeclaredLength(t *testing.T) {
	// Declares 60 MB, sends 100 bytes, then stops.
	hdr := []byte{'d', 0, 0, 0, 0}
	binary.BigEndian.PutUint32(hdr[1:], 60<<20)
	r := NewReader(bytes.NewReader(append(hdr, make([]byte, 100)...)), 64<<20)
	if _, err := r.Next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
	if len(r.buf) > 2*initialBuffer {
		t.Fatalf("buffer grew to %d bytes for 105 bytes received", len(r.buf))
	}
}

func TestReaderRefusesLengthsBelowFour(t *testing.T) {
	r := NewReader(bytes.NewReader([]byte{'Q', 0, 0, 0, 3}), 0)
	if _, err := r.Next(); !errors.Is(err, ErrMalformed) {
		t.Fatalf("err = %v, want ErrMalformed", err)
	}
}

func TestMessageReadyOnlyWhenAWholeMessageIsBuffered(t *testing.T) {
	pr, pw := io.Pipe()
	r := NewReader(pr, 0)
	go func() {
		pw.Write(frame('S', nil))
		pw.Write(frame('Q', []byte("x\x00"))[:3])
	}()
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if r.MessageReady() {
		t.Fatal("MessageReady with nothing buffered")
	}
	pw.Close()
}

func TestResetRefusesBufferedPlaintext(t *testing.T) {
	ssl := []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}
	r := NewReader(bytes.NewReader(append(ssl, frame('Q', []byte("select 1\x00"))...)), 0)
	if _, err := r.ReadStartup(); err != nil {
		t.Fatal(err)
	}
	if r.Buffered() == 0 {
		t.Fatal("the injected plaintext should be buffered")
	}
	if err := r.Reset(bytes.NewReader(nil)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Reset = %v, want ErrMalformed", err)
	}
}

func TestReadStartupLimits(t *testing.T) {
	for name, pkt := range map[string][]byte{
		"too short": {0, 0, 0, 7, 0, 3, 0},
		"too long":  {0, 0, 0x7f, 0xff, 0, 3, 0, 0},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewReader(bytes.NewReader(pkt), 0).ReadStartup()
			var tooLarge *TooLargeError
			if !errors.Is(err, ErrMalformed) && !errors.As(err, &tooLarge) {
				t.Fatalf("err = %v", err)
			}
		})
	}
}
