package session_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/pgwarden/pgwarden/session"
)

func TestSecretNeverShowsItself(t *testing.T) {
	s := session.NewSecret("hunter2")
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("login", "password", s)
	b, _ := json.Marshal(struct{ P session.Secret }{s})
	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", s), "%s": fmt.Sprint(s), "%#v": fmt.Sprintf("%#v", s),
		"%+v": fmt.Sprintf("%+v", struct{ P session.Secret }{s}), "json": string(b), "slog": logged.String(),
	} {
		if strings.Contains(out, "hunter2") || !strings.Contains(out, "REDACTED") {
			t.Errorf("%s shows %q", name, out)
		}
	}
	if s.Reveal() != "hunter2" || s.IsZero() || !session.NewSecret("").IsZero() {
		t.Fatal("Reveal or IsZero is wrong")
	}
}

func TestIdentityInvolvesItsWholeChain(t *testing.T) {
	id := session.Identity{Subject: "alice", Issuer: "idp", Chain: []session.Actor{
		{Subject: "ci-job", Issuer: "idp"}, {Subject: "agent-7", Issuer: "agents"}}}
	for _, tc := range []struct {
		issuer, subject string
		want            bool
	}{
		{"", "alice", true}, {"idp", "alice", true}, {"other", "alice", false},
		{"", "ci-job", true}, {"agents", "agent-7", true}, {"idp", "agent-7", false}, {"", "bob", false},
	} {
		if got := id.Involves(tc.issuer, tc.subject); got != tc.want {
			t.Errorf("Involves(%q, %q) = %v", tc.issuer, tc.subject, got)
		}
	}
}

func TestInfoCloneIsDeep(t *testing.T) {
	info := &session.Info{Params: map[string]string{"a": "1"}, TLS: &session.TLSInfo{Version: "TLS 1.3"},
		Identity: session.Identity{Groups: []string{"g"}, Chain: []session.Actor{{Subject: "x"}}}}
	c := info.Clone()
	c.Params["a"], c.TLS.Version, c.Identity.Groups[0], c.Identity.Chain[0].Subject = "2", "TLS 1.2", "h", "y"
	if info.Params["a"] != "1" || info.TLS.Version != "TLS 1.3" || info.Identity.Groups[0] != "g" || info.Identity.Chain[0].Subject != "x" {
		t.Fatalf("the clone shares state: %+v", info)
	}
}

func TestMultiAndBestEffort(t *testing.T) {
	var got []string
	ok := session.RecorderFunc(func(_ context.Context, ev session.Event) error { got = append(got, string(ev.Kind)); return nil })
	failing := session.RecorderFunc(func(context.Context, session.Event) error { return errors.New("disk full") })
	ev := session.Event{Kind: session.KindStatement}
	if err := session.Multi(ok, failing, ok).Record(context.Background(), ev); err == nil || len(got) != 2 {
		t.Fatalf("Multi: err %v, recorded %v: it must try every recorder and report the failure", err, got)
	}
	var reported error
	be := session.BestEffort(failing, func(_ session.Event, err error) { reported = err })
	if err := be.Record(context.Background(), ev); err != nil || reported == nil {
		t.Fatalf("BestEffort: err %v, reported %v", err, reported)
	}
	if err := session.Discard.Record(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
}

func TestErrorKeepsItsCauseFromTheClient(t *testing.T) {
	cause := errors.New("internal detail")
	e := &session.Error{Code: session.CodeInvalidAuthorization, Message: "token expired", Err: cause}
	if !errors.Is(e, cause) || !strings.Contains(e.Error(), "28000") {
		t.Fatalf("%v", e)
	}
}

// TestSecretNeverShowsItselfThroughBadVerbs: fmt prints without calling
// methods for some verbs and for values it reaches through pointers; the
// value must still not show.
func TestSecretNeverShowsItselfThroughBadVerbs(t *testing.T) {
	const password = "hunter2-password"
	type holder struct{ Password session.Secret }
	// Variables, not constants: vet would (rightly) refuse these verbs.
	d, s := "%d", "%s"
	for name, out := range map[string]string{
		"%d of a Secret": fmt.Sprintf(d, session.NewSecret(password)),
		//lint:ignore SA5009 the test checks what a wrong verb prints
		"%s of a pointer to a Secret field": fmt.Sprintf(s, struct{ P *holder }{&holder{session.NewSecret(password)}}),
	} {
		if strings.Contains(out, password) {
			t.Errorf("%s prints the secret: %s", name, out)
		}
	}
	if (session.Secret{}).Reveal() != "" || !(session.Secret{}).IsZero() {
		t.Error("the zero Secret is not empty")
	}
}
