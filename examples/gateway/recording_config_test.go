package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pgwarden/pgwarden/session"
)

// testRecordingKey is the recording key of the tests.
const testRecordingKey = "recording-key-0123456789abcdef-0123456789"

// otherWarnings returns the configuration's warnings but the one about a
// missing recording section, which most tests' configurations have.
func otherWarnings(cfg *config) []string {
	var out []string
	for _, w := range cfg.warnings {
		if !strings.Contains(w, noRecordingWarning) {
			out = append(out, w)
		}
	}
	return out
}

// TestLoadRecordingAndTelemetry loads the recording and telemetry
// sections with every key set.
func TestLoadRecordingAndTelemetry(t *testing.T) {
	t.Setenv("PGW_TEST_RECORDING_KEY", testRecordingKey)
	t.Setenv("PGW_TEST_AUDIT_DSN", "host=audit.internal user=recorder password=Aud1t-Passw0rd dbname=audit")
	path := writeFile(t, minimal+`admin: {token: `+testAdminToken+`, revocations_file: r.json}
recording:
  dir: recordings
  postgres: "${PGW_TEST_AUDIT_DSN}"
  key: "${PGW_TEST_RECORDING_KEY}"
  fail: closed
telemetry:
  otlp: {endpoint: "127.0.0.1:4318", insecure: true}
  prometheus: {enabled: true, require_token: false}
`)
	cfg, err := loadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.warnings) != 0 {
		t.Errorf("warnings = %q, want none", cfg.warnings)
	}
	r, tel := cfg.Recording, cfg.Telemetry
	checks := []struct {
		name      string
		got, want any
	}{
		{"recording.dir", r.Dir, envString(filepath.Join(filepath.Dir(path), "recordings"))},
		{"recording.postgres", r.Postgres.Reveal(), "host=audit.internal user=recorder password=Aud1t-Passw0rd dbname=audit"},
		{"recording.key", r.Key.Reveal(), testRecordingKey},
		{"recording.fail", r.Fail, envString(recordingFailClosed)},
		{"telemetry.otlp.endpoint", tel.OTLP.Endpoint, envString("127.0.0.1:4318")},
		{"telemetry.otlp.insecure", tel.OTLP.Insecure, envBool(true)},
		{"telemetry.prometheus.enabled", tel.Prometheus.Enabled, envBool(true)},
		{"telemetry.prometheus.require_token", tel.Prometheus.requireToken(), false},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
	// The configuration prints without the key or the DSN's password.
	dump := fmt.Sprintf("%v\n%+v\n%#v\n", cfg, cfg, cfg) + sprintAll(*r) + sprintAll(*tel)
	for _, s := range []string{testRecordingKey, "Aud1t-Passw0rd"} {
		if strings.Contains(dump, s) {
			t.Errorf("printing the config shows %q", s)
		}
	}
}

// TestRecordingAndTelemetryDefaults checks the defaults: recording.fail
// closed, prometheus.require_token true, nothing exported without the
// sections.
func TestRecordingAndTelemetryDefaults(t *testing.T) {
	cfg, err := loadConfig(writeFile(t, minimal+"admin: {token: "+testAdminToken+", revocations_file: r.json}\n"+
		"recording: {dir: rec, key: "+testRecordingKey+"}\ntelemetry: {prometheus: {enabled: true}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Recording.Fail != recordingFailClosed || !cfg.Telemetry.Prometheus.requireToken() || !cfg.prometheusEnabled() {
		t.Errorf("recording = %+v, telemetry.prometheus = %+v", cfg.Recording, cfg.Telemetry.Prometheus)
	}
	if len(cfg.warnings) != 0 {
		t.Errorf("warnings = %q, want none", cfg.warnings)
	}

	// Without a recording section, the proxy records nothing.
	cfg, err = loadConfig(writeFile(t, minimal))
	if err != nil {
		t.Fatal(err)
	}
	g, err := buildProxy(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.proxy.Recorder != session.Discard || g.stores != nil || g.telemetry != nil {
		t.Errorf("recorder = %#v, stores = %v, telemetry = %v; want session.Discard and none", g.proxy.Recorder, g.stores, g.telemetry)
	}
}

// TestRecordingAndTelemetryWarnings checks the warnings about settings
// that are allowed but probably not intended.
func TestRecordingAndTelemetryWarnings(t *testing.T) {
	cfg, err := loadConfig(writeFile(t, minimal+`admin: {listen: "0.0.0.0:6480", token: `+testAdminToken+`, revocations_file: r.json}
recording: {dir: rec, key: `+testRecordingKey+`, fail: best_effort}
telemetry:
  otlp: {endpoint: "collector.example.com:4318", insecure: true}
  prometheus: {enabled: true, require_token: false}
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"line 11: admin.listen: the admin API is not on loopback",
		"line 12: recording.fail: is best_effort: a session whose events cannot be recorded goes on unrecorded",
		"line 14: telemetry.otlp.insecure: traces and metrics cross the network in clear",
		"line 15: telemetry.prometheus.require_token: is false and admin.listen is not on loopback",
	}
	if len(cfg.warnings) != len(want) {
		t.Errorf("warnings = %q, want %d", cfg.warnings, len(want))
	}
	for _, w := range want {
		if !strings.Contains(strings.Join(cfg.warnings, "\n"), w) {
			t.Errorf("no warning %q in %q", w, cfg.warnings)
		}
	}
	cfg, err = loadConfig(writeFile(t, minimal+"telemetry: {prometheus: {enabled: false}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w := otherWarnings(cfg); len(w) != 1 || !strings.Contains(w[0], "line 11: telemetry: exports nothing") {
		t.Errorf("warnings = %q, want one about telemetry exporting nothing", w)
	}
}

// TestRecordingAndTelemetryErrors checks each mistake is refused with its
// key path and line.
func TestRecordingAndTelemetryErrors(t *testing.T) {
	admin := "admin: {token: " + testAdminToken + "}\n"
	tests := []struct {
		name, text string
		want       []string
	}{
		{"no store", minimal + "recording: {key: " + testRecordingKey + "}\n",
			[]string{"line 11: recording: give dir (a file store), postgres (a connection string) or both"}},
		{"no key", minimal + "recording:\n  dir: rec\n",
			[]string{"line 11: recording.key: is required"}},
		{"short key", minimal + "recording:\n  dir: rec\n  key: short-key-0123456789\n",
			[]string{"line 13: recording.key: must be at least 32 characters"}},
		{"bad fail", minimal + "recording:\n  dir: rec\n  key: " + testRecordingKey + "\n  fail: open\n",
			[]string{"line 14: recording.fail: must be closed or best_effort"}},
		{"bad dsn", minimal + "recording:\n  postgres: \"host=x port=notaport\"\n  key: " + testRecordingKey + "\n",
			[]string{"line 12: recording.postgres: is not a valid connection string"}},
		{"unknown key", minimal + "recording:\n  directory: rec\n",
			[]string{"line 12: recording.directory: unknown key directory (see the YAML reference)"}},
		{"otlp without endpoint", minimal + "telemetry:\n  otlp: {insecure: true}\n",
			[]string{"line 12: telemetry.otlp.endpoint: is required"}},
		{"otlp endpoint as a URL", minimal + "telemetry:\n  otlp:\n    endpoint: http://collector:4318/v1\n",
			[]string{"line 13: telemetry.otlp.endpoint: is not host:port"}},
		{"prometheus without admin", minimal + "telemetry:\n  prometheus:\n    enabled: true\n",
			[]string{"line 13: telemetry.prometheus.enabled: needs the admin section"}},
		{"prometheus as a boolean", minimal + admin + "telemetry:\n  prometheus: true\n",
			[]string{"line 13: telemetry.prometheus: must be a mapping, not true or false"}},
		{"bad require_token", minimal + admin + "telemetry:\n  prometheus: {enabled: true, require_token: maybe}\n",
			[]string{"line 13: telemetry.prometheus.require_token: not a boolean"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { wantLoadError(t, tc.text, tc.want...) })
	}
}

// TestRecordingSecretsStayOutOfErrors puts the recording key and the
// audit DSN's password where they are refused, and checks no part of them
// reaches the error.
func TestRecordingSecretsStayOutOfErrors(t *testing.T) {
	const secret = "Hunter2-Sup3rSecret"
	t.Setenv("PGW_SECRET", secret)
	for _, text := range []string{
		minimal + "recording: {dir: rec, key: " + secret + "}\n",                                               // too short
		minimal + "recording: {dir: rec, key: [" + secret + "]}\n",                                             // a list
		minimal + "recording: {dir: rec, key: " + testRecordingKey + ", fail: " + secret + "}\n",               // in fail
		minimal + "recording: {postgres: \"host=x password=" + secret + " port=x\", key: \"${PGW_SECRET}\"}\n", // bad DSN, short key
		minimal + "recording: {postgres: \"postgres://u:" + secret + "@h:notaport/db\", key: " + testRecordingKey + "}\n",
		minimal + "telemetry: {otlp: {endpoint: \"" + secret + "\"}}\n",
		minimal + "recording: " + secret + "\n",
	} {
		_, err := loadConfig(writeFile(t, text))
		if err == nil {
			t.Errorf("loadConfig succeeded for %q", text)
			continue
		}
		for _, part := range []string{secret, secret[:7], "Sup3r"} {
			if strings.Contains(err.Error(), part) {
				t.Errorf("error contains %q: %v", part, err)
			}
		}
	}
}

// TestCheckRecordingDir checks that `pgwarden check` looks at
// recording.dir without creating it, and refuses one that cannot be made.
func TestCheckRecordingDir(t *testing.T) {
	path := writeFile(t, minimal+"recording: {dir: rec, key: "+testRecordingKey+"}\n")
	if code, stdout, stderr := runCLI([]string{"check", "--config", path}, ""); code != exitOK || stdout != "config OK\n" {
		t.Errorf("check: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "rec")); !os.IsNotExist(err) {
		t.Errorf("check created recording.dir (stat: %v)", err)
	}
	path = writeFile(t, minimal+"recording: {dir: no/such/parent/rec, key: "+testRecordingKey+"}\n")
	code, _, stderr := runCLI([]string{"check", "--config", path}, "")
	if code != exitError || !strings.Contains(stderr, "line 11: recording.dir: the directory's parent:") {
		t.Errorf("check with a missing parent: exit %d, stderr %q", code, stderr)
	}
	file := writeFile(t, minimal)
	path = writeFile(t, minimal+"recording: {dir: "+yamlQuote(file)+", key: "+testRecordingKey+"}\n")
	code, _, stderr = runCLI([]string{"check", "--config", path}, "")
	if code != exitError || !strings.Contains(stderr, "recording.dir:") || !strings.Contains(stderr, "is not a directory") {
		t.Errorf("check with a file as recording.dir: exit %d, stderr %q", code, stderr)
	}
}
