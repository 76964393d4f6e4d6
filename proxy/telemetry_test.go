package proxy_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/pgwarden/pgwarden/proxy"
)

// telemetryFixture is a gateway reporting to an in-memory tracer and a
// manual metric reader.
type telemetryFixture struct {
	*gateway
	spans   *tracetest.SpanRecorder
	metrics *sdkmetric.ManualReader
}

func startTelemetryGateway(t *testing.T) *telemetryFixture {
	t.Helper()
	f := &telemetryFixture{spans: tracetest.NewSpanRecorder(), metrics: sdkmetric.NewManualReader()}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(f.spans))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(f.metrics))
	t.Cleanup(func() {
		tp.Shutdown(context.Background())
		mp.Shutdown(context.Background())
	})
	f.gateway = startGateway(t, func(p *proxy.Proxy) {
		p.Policy = blockForbidden
		p.TracerProvider = tp
		p.MeterProvider = mp
	})
	return f
}

// sessionSpan waits for the ended session span of the session with id.
func (f *telemetryFixture) sessionSpan(t *testing.T, id string) sdktrace.ReadOnlySpan {
	t.Helper()
	var found sdktrace.ReadOnlySpan
	waitFor(t, func() bool {
		for _, s := range f.spans.Ended() {
			if s.Name() == "pgwarden.session" && spanAttr(s, "pgwarden.session.id").AsString() == id {
				found = s
				return true
			}
		}
		return false
	})
	return found
}

// collect reads the metrics.
func (f *telemetryFixture) collect(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := f.metrics.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

func spanAttr(s sdktrace.ReadOnlySpan, key string) attribute.Value {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func hasAttr(s sdktrace.ReadOnlySpan, key string) bool {
	return spanAttr(s, key).Type() != attribute.EMPTY
}

// wantAttrs checks string attributes of a span (an int64 attribute is
// compared in decimal).
func wantAttrs(t *testing.T, s sdktrace.ReadOnlySpan, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if got := spanAttr(s, k).String(); got != v {
			t.Errorf("span %q: %s = %q, want %q", s.Name(), k, got, v)
		}
	}
}

// sessionID returns the id of the only live session.
func sessionID(t *testing.T, g *gateway) string {
	t.Helper()
	live := g.Sessions()
	if len(live) != 1 {
		t.Fatalf("%d live sessions, want 1", len(live))
	}
	return live[0].Info.ID
}

// int64Sum returns the sum of the data points of an Int64 sum metric whose
// attributes include every one of match.
func int64Sum(t *testing.T, m metricdata.Metrics, match ...attribute.KeyValue) int64 {
	t.Helper()
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("metric %q is %T, want an int64 sum", m.Name, m.Data)
	}
	var total int64
	for _, dp := range sum.DataPoints {
		matches := true
		for _, kv := range match {
			if v, ok := dp.Attributes.Value(kv.Key); !ok || v != kv.Value {
				matches = false
			}
		}
		if matches {
			total += dp.Value
		}
	}
	return total
}

func TestTelemetry(t *testing.T) {
	f := startTelemetryGateway(t)
	ctx := testContext(t)
	conn := connect(t, f.dsn("alice", alicePassword))
	id := sessionID(t, f.gateway)

	for _, sql := range []string{
		"create table if not exists tel_accounts(id int, note text)",
		"truncate tel_accounts",
		"insert into tel_accounts values (42, 'tel-inserted-secret')",
	} {
		if _, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// A simple query with literals.
	var note string
	if err := conn.QueryRow(ctx, "select note from tel_accounts where id = 42 and note <> 'tel-simple-secret'",
		pgx.QueryExecModeSimpleProtocol).Scan(&note); err != nil {
		t.Fatal(err)
	}
	// A prepared statement with a parameter (Parse, then Bind and Execute).
	var n int
	if err := conn.QueryRow(ctx, "select id from tel_accounts where id = $1 and note <> 'tel-prepared-secret'", 42).Scan(&n); err != nil || n != 42 {
		t.Fatalf("prepared: %d, %v", n, err)
	}
	// A refused statement.
	_, err := conn.Exec(ctx, "select 'forbidden tel-refused-secret' from tel_accounts", pgx.QueryExecModeSimpleProtocol)
	wantRefusal(t, err, "no-forbidden")
	// Several statements in one Query.
	if _, err := conn.Exec(ctx, "select 1 from tel_accounts; select 2", pgx.QueryExecModeSimpleProtocol); err != nil {
		t.Fatal(err)
	}
	// An error.
	if _, err := conn.Exec(ctx, "select 1/0", pgx.QueryExecModeSimpleProtocol); pgCode(err) != "22012" {
		t.Fatalf("division by zero: %v", err)
	}
	conn.Close(ctx)

	sess := f.sessionSpan(t, id)
	if sess.Parent().IsValid() {
		t.Errorf("the session span has a parent %v", sess.Parent())
	}
	if sess.SpanKind() != trace.SpanKindServer {
		t.Errorf("session span kind %v", sess.SpanKind())
	}
	wantAttrs(t, sess, map[string]string{
		"db.system.name":              "postgresql",
		"db.namespace":                "app",
		"enduser.id":                  "alice",
		"pgwarden.identity.issuer":    "static",
		"pgwarden.auth.method":        "scram-sha-256",
		"pgwarden.chain":              "alice",
		"pgwarden.chain.depth":        "0",
		"pgwarden.upstream.user":      rwRole,
		"network.peer.address":        "127.0.0.1",
		"server.address":              pg.Host,
		"server.port":                 fmt.Sprint(pg.Port),
		"pgwarden.session.end_reason": "client-exit",
	})
	if sess.Status().Code == codes.Error {
		t.Errorf("a session the client closed has status %v", sess.Status())
	}

	// Every statement span is a child of the session's, ended by now (the
	// session ended after its answers).
	var stmts []sdktrace.ReadOnlySpan
	for _, s := range f.spans.Ended() {
		if s.Name() == "pgwarden.session" || s.SpanContext().TraceID() != sess.SpanContext().TraceID() {
			continue
		}
		stmts = append(stmts, s)
		if s.Parent().SpanID() != sess.SpanContext().SpanID() {
			t.Errorf("span %q: parent %v, want the session span %v", s.Name(), s.Parent().SpanID(), sess.SpanContext().SpanID())
		}
		if s.SpanKind() != trace.SpanKindClient {
			t.Errorf("span %q: kind %v", s.Name(), s.SpanKind())
		}
		if !s.StartTime().Before(s.EndTime()) || s.StartTime().Before(sess.StartTime()) || s.EndTime().After(sess.EndTime()) {
			t.Errorf("span %q: %v..%v outside the session's %v..%v", s.Name(), s.StartTime(), s.EndTime(), sess.StartTime(), sess.EndTime())
		}
		if got := spanAttr(s, "db.system.name").AsString(); got != "postgresql" {
			t.Errorf("span %q: db.system.name %q", s.Name(), got)
		}
		// No literal of any statement, whatever its attribute.
		for _, kv := range s.Attributes() {
			for _, secret := range []string{"tel-inserted-secret", "tel-simple-secret", "tel-prepared-secret", "tel-refused-secret"} {
				if strings.Contains(kv.Value.String(), secret) {
					t.Errorf("span %q: %s = %q shows a literal", s.Name(), kv.Key, kv.Value.String())
				}
			}
		}
	}
	for _, s := range stmts {
		t.Logf("span %q %v %v", s.Name(), s.Status(), s.Attributes())
	}
	if t.Failed() {
		t.FailNow()
	}
	find := func(stage, textPrefix string) sdktrace.ReadOnlySpan {
		t.Helper()
		for _, s := range stmts {
			if spanAttr(s, "pgwarden.stage").AsString() == stage && strings.HasPrefix(spanAttr(s, "db.query.text").AsString(), textPrefix) {
				return s
			}
		}
		var all []string
		for _, s := range stmts {
			all = append(all, fmt.Sprintf("%s [%s] %s", s.Name(), spanAttr(s, "pgwarden.stage").String(), spanAttr(s, "db.query.text").String()))
		}
		t.Fatalf("no span of stage %s with text %q among:\n%s", stage, textPrefix, strings.Join(all, "\n"))
		return nil
	}

	ins := find("query", "insert into tel_accounts")
	if ins.Name() != "INSERT tel_accounts" {
		t.Errorf("insert span named %q", ins.Name())
	}
	wantAttrs(t, ins, map[string]string{"db.query.text": "insert into tel_accounts values ($1, $2)",
		"db.operation.name": "INSERT", "db.collection.name": "tel_accounts"})

	simple := find("query", "select note from tel_accounts")
	if simple.Name() != "SELECT tel_accounts" {
		t.Errorf("simple select span named %q", simple.Name())
	}
	wantAttrs(t, simple, map[string]string{
		"db.query.text":             "select note from tel_accounts where id = $1 and note <> $2",
		"db.namespace":              "app",
		"db.operation.name":         "SELECT",
		"db.collection.name":        "tel_accounts",
		"pgwarden.decision":         "allow",
		"pgwarden.rule":             "default",
		"db.response.returned_rows": "1",
	})
	if simple.Status().Code == codes.Error || hasAttr(simple, "db.response.status_code") {
		t.Errorf("simple select: status %v, code %q", simple.Status(), spanAttr(simple, "db.response.status_code").String())
	}

	const preparedText = "select id from tel_accounts where id = $1 and note <> $2"
	parse := find("parse", "select id from tel_accounts")
	bind := find("bind", "select id from tel_accounts")
	for _, s := range []sdktrace.ReadOnlySpan{parse, bind} {
		if s.Name() != "SELECT tel_accounts" {
			t.Errorf("prepared span named %q", s.Name())
		}
		wantAttrs(t, s, map[string]string{"db.query.text": preparedText, "db.operation.name": "SELECT",
			"db.collection.name": "tel_accounts", "pgwarden.decision": "allow"})
	}
	if spanAttr(parse, "pgwarden.statement.seq") != spanAttr(bind, "pgwarden.statement.seq") {
		t.Errorf("the Bind's seq %v is not its Parse's %v", spanAttr(bind, "pgwarden.statement.seq").String(), spanAttr(parse, "pgwarden.statement.seq").String())
	}
	// The Bind's span lasts until its Execute completed.
	wantAttrs(t, bind, map[string]string{"db.response.returned_rows": "1"})
	if hasAttr(parse, "db.response.returned_rows") {
		t.Errorf("a Parse span has returned rows")
	}

	refused := find("query", "select $1 from tel_accounts")
	wantAttrs(t, refused, map[string]string{
		"pgwarden.decision":       "block",
		"pgwarden.rule":           "no-forbidden",
		"db.response.status_code": "42501",
		"db.operation.name":       "SELECT",
	})
	if refused.Status().Code != codes.Error {
		t.Errorf("refused statement: status %v", refused.Status())
	}

	batch := find("query", "select $1 from tel_accounts; select $2")
	if batch.Name() != "BATCH SELECT tel_accounts" {
		t.Errorf("batch span named %q", batch.Name())
	}
	wantAttrs(t, batch, map[string]string{"db.operation.name": "BATCH SELECT", "db.operation.batch.size": "2",
		"db.response.returned_rows": "2"})

	div := find("query", "select $1/$2")
	wantAttrs(t, div, map[string]string{"db.response.status_code": "22012", "error.type": "22012",
		"pgwarden.decision": "allow", "db.operation.name": "SELECT"})
	if div.Name() != "SELECT" {
		t.Errorf("division span named %q", div.Name())
	}
	if div.Status().Code != codes.Error || div.Status().Description != "22012" {
		t.Errorf("division by zero: status %v", div.Status())
	}

	// Metrics.
	ms := f.collect(t)
	allow, block := attribute.String("pgwarden.decision", "allow"), attribute.String("pgwarden.decision", "block")
	if got := int64Sum(t, ms["pgwarden.statements"], block, attribute.String("pgwarden.stage", "query")); got != 1 {
		t.Errorf("blocked statements: %d, want 1", got)
	}
	// create, truncate, insert, select, the batch, select 1/0 as
	// queries; the prepared select's Parse and Bind.
	if got := int64Sum(t, ms["pgwarden.statements"], allow, attribute.String("pgwarden.stage", "query")); got != 6 {
		t.Errorf("allowed queries: %d, want 6", got)
	}
	for _, stage := range []string{"parse", "bind"} {
		if got := int64Sum(t, ms["pgwarden.statements"], allow, attribute.String("pgwarden.stage", stage)); got != 1 {
			t.Errorf("allowed at %s: %d, want 1", stage, got)
		}
	}
	hist, ok := ms["db.client.operation.duration"].Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("db.client.operation.duration is %T", ms["db.client.operation.duration"].Data)
	}
	if u := ms["db.client.operation.duration"].Unit; u != "s" {
		t.Errorf("duration unit %q", u)
	}
	var count, failed uint64
	for _, dp := range hist.DataPoints {
		count += dp.Count
		if v, ok := dp.Attributes.Value("db.response.status_code"); ok {
			failed += dp.Count
			if s := v.AsString(); s != "42501" && s != "22012" {
				t.Errorf("duration of a failure with code %q", s)
			}
		}
		if dp.Sum <= 0 || dp.Sum > 60 {
			t.Errorf("durations add up to %vs", dp.Sum)
		}
	}
	// Six queries, the refused one and the prepared select's execution
	// (not its preparation).
	if count != 8 || failed != 2 {
		t.Errorf("durations: %d recorded, %d failed; want 8 and 2", count, failed)
	}
	if got := int64Sum(t, ms["pgwarden.sessions.active"]); got != 0 {
		t.Errorf("pgwarden.sessions.active = %d after the session ended", got)
	}
	if got := int64Sum(t, ms["pgwarden.sessions"], attribute.String("pgwarden.session.end_reason", "client-exit")); got != 1 {
		t.Errorf("sessions ended by the client: %d", got)
	}
	up := int64Sum(t, ms["pgwarden.bytes"], attribute.String("direction", "client_to_server"))
	down := int64Sum(t, ms["pgwarden.bytes"], attribute.String("direction", "server_to_client"))
	// Both directions carry at least the statements' text.
	if up < 200 || down < 100 {
		t.Errorf("bytes relayed: %d up, %d down", up, down)
	}
	if u := ms["pgwarden.bytes"].Unit; u != "By" {
		t.Errorf("bytes unit %q", u)
	}
}

// TestTelemetryFatal: a session that ends with a FATAL has an error span,
// and active sessions are counted while they run.
func TestTelemetryFatal(t *testing.T) {
	f := startTelemetryGateway(t)
	ctx := testContext(t)
	conn := connect(t, f.dsn("alice", alicePassword))
	id := sessionID(t, f.gateway)
	if got := int64Sum(t, f.collect(t)["pgwarden.sessions.active"]); got != 1 {
		t.Errorf("pgwarden.sessions.active = %d with one session", got)
	}
	if _, err := conn.Exec(ctx, "select 1"); err != nil {
		t.Fatal(err)
	}
	if err := f.Terminate(id, ""); err != nil {
		t.Fatal(err)
	}
	sess := f.sessionSpan(t, id)
	if sess.Status().Code != codes.Error {
		t.Errorf("terminated session: status %v", sess.Status())
	}
	wantAttrs(t, sess, map[string]string{"db.response.status_code": "57P01", "pgwarden.session.end_reason": "terminated"})
	ms := f.collect(t)
	if got := int64Sum(t, ms["pgwarden.sessions.active"]); got != 0 {
		t.Errorf("pgwarden.sessions.active = %d after the session ended", got)
	}
	if got := int64Sum(t, ms["pgwarden.sessions"], attribute.String("pgwarden.session.end_reason", "terminated")); got != 1 {
		t.Errorf("terminated sessions: %d", got)
	}
}

// TestTelemetryPipelineSkipped: statements the server skips after an error
// in a pipeline end their spans as not run.
func TestTelemetryPipelineSkipped(t *testing.T) {
	f := startTelemetryGateway(t)
	ctx := testContext(t)
	conn := connect(t, f.dsn("alice", alicePassword))
	id := sessionID(t, f.gateway)
	batch := &pgx.Batch{}
	batch.Queue("select 1/0")
	batch.Queue("select 'skipped' || $1::text", "x")
	if err := conn.SendBatch(ctx, batch).Close(); pgCode(err) != "22012" {
		t.Fatalf("batch: %v", err)
	}
	conn.Close(ctx)
	sess := f.sessionSpan(t, id)
	var skipped, failed int
	for _, s := range f.spans.Ended() {
		if s.Parent().SpanID() != sess.SpanContext().SpanID() {
			continue
		}
		switch {
		case s.Status().Code == codes.Error && strings.Contains(s.Status().Description, "did not run"):
			skipped++
		case spanAttr(s, "db.response.status_code").AsString() == "22012":
			failed++
		}
	}
	if failed == 0 || skipped == 0 {
		t.Errorf("%d failed and %d skipped statement spans, want both", failed, skipped)
	}
}

// TestTelemetryOff: with no providers set and none installed globally
// (the default), the gateway works as ever.
func TestTelemetryOff(t *testing.T) {
	if _, ok := otel.GetTracerProvider().(*sdktrace.TracerProvider); ok {
		t.Skip("a global tracer provider is installed")
	}
	g := startGateway(t, func(p *proxy.Proxy) { p.Policy = blockForbidden })
	ctx := testContext(t)
	conn := connect(t, g.dsn("alice", alicePassword))
	var n int
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement, pgx.QueryExecModeExec} {
		if err := conn.QueryRow(ctx, "select $1::int + 1", mode, 41).Scan(&n); err != nil || n != 42 {
			t.Fatalf("%v: %d, %v", mode, n, err)
		}
		_, err := conn.Exec(ctx, "select 'forbidden'", mode)
		wantRefusal(t, err, "no-forbidden")
	}
	if _, err := conn.Exec(ctx, "select 1/0"); pgCode(err) != "22012" {
		t.Fatalf("division by zero: %v", err)
	}
	conn.Close(ctx)
	waitFor(t, func() bool { return len(g.Sessions()) == 0 })
}

// BenchmarkSelectOneTraced is BenchmarkSelectOne through the gateway with
// every session and statement traced (spans recorded, not exported) and
// metrics collected: what telemetry costs when it is on.
func BenchmarkSelectOneTraced(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		tp.Shutdown(context.Background())
		mp.Shutdown(context.Background())
	})
	g := startGateway(b, func(p *proxy.Proxy) {
		p.Recorder = nil
		p.Logger = slog.New(slog.DiscardHandler)
		p.TracerProvider, p.MeterProvider = tp, mp
	})
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		b.Run(mode.String(), func(b *testing.B) {
			conn := connect(b, g.dsn("alice", alicePassword))
			ctx := testContext(b)
			var n int
			for b.Loop() {
				if err := conn.QueryRow(ctx, "select 1", mode).Scan(&n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
