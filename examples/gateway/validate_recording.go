package main

import (
	"cmp"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
)

// minRecordingKey is the shortest recording.key accepted, in characters:
// the key is the ledger's HMAC-SHA-256 key, and a short one could be
// guessed.
const minRecordingKey = 32

// noRecordingWarning is the warning for a configuration without a
// recording section.
const noRecordingWarning = "no recording section: sessions are not recorded (set recording.dir or recording.postgres, and recording.key)"

// validateRecording checks the recording section. The stores check again
// when the gateway is built (and connect then); these checks name the key
// at fault without connecting or touching the disk.
func (c *config) validateRecording(v *validator) {
	r := c.Recording
	if r == nil {
		v.warn("recording", noRecordingWarning)
		return
	}
	p := keyPath("recording")
	if r.Dir == "" && r.Postgres.IsZero() {
		v.fail(p, "give dir (a file store), postgres (a connection string) or both")
	}
	if strings.ContainsRune(string(r.Dir), 0) {
		v.fail(p.key("dir"), "contains a NUL character")
	}
	if !r.Postgres.IsZero() {
		if _, err := pgconn.ParseConfig(r.Postgres.Reveal()); err != nil {
			// pgconn's errors may quote the string, and with it the password.
			v.fail(p.key("postgres"), "is not a valid connection string (libpq keyword=value or postgres:// URL), or names a file that cannot be read")
		}
	}
	switch key := r.Key.Reveal(); {
	case key == "":
		v.fail(p.key("key"), "is required: the key of the recordings' hash chains (for example ${PGWARDEN_RECORDING_KEY}); keep it, it verifies them later")
	case !utf8.ValidString(key):
		v.fail(p.key("key"), "is not valid UTF-8")
	case utf8.RuneCountInString(key) < minRecordingKey:
		v.fail(p.key("key"), "must be at least %d characters", minRecordingKey)
	}
	switch string(r.Fail) {
	case "", recordingFailClosed:
	case recordingFailBestEffort:
		v.warn(p.key("fail"), "is best_effort: a session whose events cannot be recorded goes on unrecorded")
	default:
		v.fail(p.key("fail"), "must be closed or best_effort")
	}
}

// validateTelemetry checks the telemetry section.
func (c *config) validateTelemetry(v *validator) {
	t := c.Telemetry
	if t == nil {
		return
	}
	p := keyPath("telemetry")
	if o := t.OTLP; o != nil {
		op := p.key("otlp")
		if o.Endpoint == "" {
			v.fail(op.key("endpoint"), "is required: the collector's OTLP/HTTP host:port (such as collector:4318)")
		} else if err := checkHostPort(string(o.Endpoint), false); err != nil {
			v.fail(op.key("endpoint"), "%w (the collector's OTLP/HTTP host:port, such as collector:4318; no scheme or path)", err)
		} else if bool(o.Insecure) && !isLocalAddress(string(o.Endpoint)) {
			v.warn(op.key("insecure"), "traces and metrics cross the network in clear (plain HTTP)")
		}
	}
	if pr := t.Prometheus; pr != nil && pr.Enabled {
		pp := p.key("prometheus")
		if c.Admin == nil {
			v.fail(pp.key("enabled"), "needs the admin section: /metrics is served on admin.listen")
		} else if !pr.requireToken() && !isLocalAddress(cmp.Or(string(c.Admin.Listen), defaultAdminListen)) {
			v.warn(pp.key("require_token"), "is false and admin.listen is not on loopback: anyone who reaches it can read the metrics")
		}
	}
	if t.OTLP == nil && !c.prometheusEnabled() {
		v.warn(p, "exports nothing (no otlp, and prometheus is not enabled)")
	}
}
