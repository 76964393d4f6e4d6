package policy_test

import (
	"reflect"
	"testing"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

func TestStartupSettings(t *testing.T) {
	info := &session.Info{Params: map[string]string{
		"search_path": "hidden, public",
		"options":     `-c default_transaction_read_only=off --work-mem=64MB -crole=admin -c application_name=a\ b -B 10`,
	}}
	got := policy.StartupSettings(info)
	want := []policy.Setting{
		{Name: "default_transaction_read_only", Value: "off", Known: true, Via: "startup options"},
		{Name: "work_mem", Value: "64MB", Known: true, Via: "startup options"},
		{Name: "role", Value: "admin", Known: true, Via: "startup options"},
		{Name: "application_name", Value: "a b", Known: true, Via: "startup options"},
		{Name: "*", Via: "startup options"},
		{Name: "*", Via: "startup options"},
		{Name: "search_path", Value: "hidden, public", Known: true, Via: "startup"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("StartupSettings:\n got %+v\nwant %+v", got, want)
	}
	if policy.StartupSettings(nil) != nil || policy.StartupSettings(&session.Info{}) != nil {
		t.Error("no parameters should give no settings")
	}
}

func TestBlockSettingsSeesStartupSettings(t *testing.T) {
	p := policy.BlockSettings(policy.ProtectedSettings()...)
	q := &policy.Query{Session: &session.Info{Params: map[string]string{"options": "-c role=admin"}},
		Statements: []*policy.Statement{{Kind: policy.KindSelect, Command: "SELECT"}}}
	if d, _ := p.Decide(t.Context(), q); d.Verdict != policy.Block || d.Rule != "block-settings" {
		t.Errorf("a session started with -c role=admin: %+v, want block-settings", d)
	}
	q.Session.Params = map[string]string{"options": "-c work_mem=64MB", "application_name": "x", "client_encoding": "UTF8"}
	if d, _ := p.Decide(t.Context(), q); d.Verdict != policy.Abstain {
		t.Errorf("a session started with harmless settings: %+v, want abstain", d)
	}
	q.Session.Params = map[string]string{"search_path": "x", "role": "admin"}
	if d, _ := p.Decide(t.Context(), q); d.Verdict != policy.Block {
		t.Errorf("a session started with the role parameter: %+v, want block-settings", d)
	}
}
