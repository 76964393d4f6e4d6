package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	"google.golang.org/protobuf/proto"
)

// telemetrySession runs a short session as carol: two statements that
// run and one the policy refuses.
func telemetrySession(t *testing.T, ctx context.Context, addr string) {
	t.Helper()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://carol:carol-secret@%s/app?sslmode=disable", addr))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, sql := range []string{"SELECT 1", "SELECT count(*) FROM t"} {
		if _, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, "SELECT * FROM secrets", pgx.QueryExecModeSimpleProtocol); pgCode(err) != "42501" {
		t.Fatalf("refused statement: %v", err)
	}
	conn.Close(ctx)
}

// scrape GETs /metrics from the admin API with the bearer token auth
// (none when empty).
func scrape(t *testing.T, tg *testGateway, auth string) (int, string) {
	t.Helper()
	status, body := tg.call(t, http.MethodGet, "/metrics", auth, nil)
	return status, string(body)
}

// TestTelemetryPrometheus serves a gateway with telemetry.prometheus and
// scrapes /metrics on the admin listener after a session: the statement
// and session counters are there, under the service name pgwarden; the
// admin token is required by default, and not with require_token: false
// (which opens /metrics only).
func TestTelemetryPrometheus(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	f := newRecordingFixture(t, ctx)
	tg := startTestGatewayFile(t, f.writeConfig(t, f.config("telemetry: {prometheus: {enabled: true}}\n")), testAdminToken)
	telemetrySession(t, ctx, tg.addr)
	tg.waitSessions(t, 0)

	if status, _ := scrape(t, tg, ""); status != http.StatusUnauthorized {
		t.Errorf("GET /metrics without the token: %d, want 401", status)
	}
	// The session leaves the proxy's list a moment before it is counted
	// as ended: scrape until it is.
	var status int
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		status, body = scrape(t, tg, "Bearer "+testAdminToken)
		if status != http.StatusOK {
			t.Fatalf("GET /metrics: %d\n%s", status, body)
		}
		if metricValue(body, "pgwarden_sessions_total", "") == "1" || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range []string{
		`pgwarden_statements_total{`,
		`pgwarden_decision="allow"`,
		`pgwarden_decision="block"`,
		`pgwarden_sessions_total{`,
		`pgwarden_sessions_active{`,
		`db_client_operation_duration_seconds_bucket{`,
		`target_info{`,
		`service_name="pgwarden"`,
		`go_goroutines `,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
	// Counts: 3 statements judged (2 allowed, 1 refused), 1 session.
	for _, want := range []string{`pgwarden_decision="allow"`, `pgwarden_decision="block"`} {
		if v := metricValue(body, "pgwarden_statements_total", want); v == "" || v == "0" {
			t.Errorf("pgwarden_statements_total{%s} = %q, want a count", want, v)
		}
	}
	if v := metricValue(body, "pgwarden_sessions_total", ""); v != "1" {
		t.Errorf("pgwarden_sessions_total = %q, want 1", v)
	}
	tg.checkLogs(t, "carol-secret", "app-user-secret")

	// require_token: false opens /metrics, and only /metrics.
	open := startTestGatewayFile(t, f.writeConfig(t, f.config("telemetry: {prometheus: {enabled: true, require_token: false}}\n")), testAdminToken)
	if status, body := scrape(t, open, ""); status != http.StatusOK || !strings.Contains(body, "target_info{") {
		t.Errorf("GET /metrics without the token, require_token false: %d", status)
	}
	for _, c := range []struct{ method, path string }{{"GET", "/sessions"}, {"POST", "/metrics"}, {"GET", "/metrics/x"}, {"GET", "/leases"}} {
		if status, _ := open.call(t, c.method, c.path, "", nil); status != http.StatusUnauthorized {
			t.Errorf("%s %s without the token, require_token false: %d, want 401", c.method, c.path, status)
		}
	}

	// Without telemetry.prometheus there is no /metrics.
	none := startTestGatewayFile(t, f.writeConfig(t, f.config("")), testAdminToken)
	if status, _ := scrape(t, none, "Bearer "+testAdminToken); status != http.StatusNotFound {
		t.Errorf("GET /metrics without telemetry.prometheus: %d, want 404", status)
	}
}

// metricValue returns the value of the first sample of metric whose
// labels contain label ("" for any), "" when there is none.
func metricValue(body, metric, label string) string {
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, metric+"{") && !strings.HasPrefix(line, metric+" ") {
			continue
		}
		if label != "" && !strings.Contains(line, label) {
			continue
		}
		fields := strings.Fields(line)
		return fields[len(fields)-1]
	}
	return ""
}

// collector is a fake OTLP/HTTP collector: it keeps what it receives.
type collector struct {
	mu      sync.Mutex
	traces  []*coltracepb.ExportTraceServiceRequest
	metrics []*colmetricpb.ExportMetricsServiceRequest
	bad     []string
}

// ServeHTTP implements http.Handler.
func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	c.mu.Lock()
	defer c.mu.Unlock()
	var msg proto.Message
	switch r.URL.Path {
	case "/v1/traces":
		m := &coltracepb.ExportTraceServiceRequest{}
		c.traces, msg = append(c.traces, m), m
	case "/v1/metrics":
		m := &colmetricpb.ExportMetricsServiceRequest{}
		c.metrics, msg = append(c.metrics, m), m
	default:
		c.bad = append(c.bad, r.Method+" "+r.URL.Path)
		http.NotFound(w, r)
		return
	}
	if err == nil {
		err = proto.Unmarshal(body, msg)
	}
	if err != nil || r.Header.Get("Content-Type") != "application/x-protobuf" {
		c.bad = append(c.bad, fmt.Sprintf("%s: %v, content type %q", r.URL.Path, err, r.Header.Get("Content-Type")))
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// serviceName returns the service.name of a resource's attributes.
func serviceNameOf(attrs []*commonpb.KeyValue) string {
	for _, a := range attrs {
		if a.Key == "service.name" {
			return a.Value.GetStringValue()
		}
	}
	return ""
}

// TestTelemetryOTLP serves a gateway exporting to a fake OTLP/HTTP
// collector (insecure: plain HTTP) and checks that, once the gateway has
// stopped (which flushes), the collector has the session's span and the
// statement counter, under the service name pgwarden.
func TestTelemetryOTLP(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := &collector{}
	srv := httptest.NewServer(c)
	defer srv.Close()
	endpoint := strings.TrimPrefix(srv.URL, "http://")
	if _, _, err := net.SplitHostPort(endpoint); err != nil {
		t.Fatal(err)
	}
	f := newRecordingFixture(t, ctx)
	tg := startTestGatewayFile(t, f.writeConfig(t, f.config(
		"telemetry: {otlp: {endpoint: \""+endpoint+"\", insecure: true}}\n")), testAdminToken)
	telemetrySession(t, ctx, tg.addr)
	tg.waitSessions(t, 0)
	tg.stop()

	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.bad) > 0 {
		t.Errorf("bad requests: %q", c.bad)
	}
	spans := map[string]bool{}
	for _, req := range c.traces {
		for _, rs := range req.ResourceSpans {
			if name := serviceNameOf(rs.Resource.GetAttributes()); name != "pgwarden" {
				t.Errorf("spans of service %q, want pgwarden", name)
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					spans[s.Name] = true
				}
			}
		}
	}
	if !spans["pgwarden.session"] {
		t.Errorf("spans = %v, want pgwarden.session", spans)
	}
	metrics := map[string]bool{}
	for _, req := range c.metrics {
		for _, rm := range req.ResourceMetrics {
			if name := serviceNameOf(rm.Resource.GetAttributes()); name != "pgwarden" {
				t.Errorf("metrics of service %q, want pgwarden", name)
			}
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					metrics[m.Name] = true
				}
			}
		}
	}
	for _, want := range []string{"pgwarden.statements", "pgwarden.sessions", "pgwarden.sessions.active"} {
		if !metrics[want] {
			t.Errorf("metrics = %v, want %s", metrics, want)
		}
	}
}
