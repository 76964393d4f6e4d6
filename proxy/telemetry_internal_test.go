package proxy

import (
	"context"
	"sync"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/pgwarden/pgwarden/policy"
	"github.com/pgwarden/pgwarden/session"
)

// TestTelemetryOffAllocatesNothing: with the default (global, no SDK)
// providers, following a statement from its judgement to its answer, and
// counting relayed bytes, allocate nothing.
func TestTelemetryOffAllocatesNothing(t *testing.T) {
	s := fuzzSession(t)
	s.telStart()
	if s.tel.tracing {
		t.Skip("a global tracer provider records spans")
	}
	sts, err := s.p.analyzer().Analyze("select * from accounts where id = $1")
	if err != nil {
		t.Fatal(err)
	}
	st := &statement{seq: 1, protocol: session.ProtocolExtended, sql: "select * from accounts where id = $1", analysis: sts}
	allow := policy.Decision{Verdict: policy.Allow, Rule: "default"}
	allocs := testing.AllocsPerRun(1000, func() {
		// A Query.
		q := op{kind: opQuery, stmt: st}
		q.tel = s.telStatement(st, policy.StageQuery, allow, time.Now())
		s.telResult(&q, 3, "")
		s.telDone(&q)
		// A Bind carried to its Execute.
		b := op{kind: opBind, stmt: st}
		b.tel = s.telStatement(st, policy.StageBind, allow, time.Now())
		s.telBound(&b)
		e := op{kind: opExecute, stmt: st}
		s.telExecute(&e)
		s.telResult(&e, 1, "")
		s.telDone(&e)
		s.tel.up += 100
		s.tel.down += 1000
		s.telFlushUp()
		s.telFlushDown()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per statement with telemetry off", allocs)
	}
	s.end(session.EndClientExit, nil)
	s.telFinish()
}

// benchmarkTelemetry follows one statement from its judgement to its
// answer, as the relays do, with p's providers.
func benchmarkTelemetry(b *testing.B, configure func(*Proxy)) {
	s := fuzzSession(b)
	configure(s.p)
	s.telInit()
	s.telStart()
	sts, err := s.p.analyzer().Analyze("select * from accounts where id = $1")
	if err != nil {
		b.Fatal(err)
	}
	st := &statement{seq: 1, protocol: session.ProtocolSimple, sql: "select * from accounts where id = $1", analysis: sts}
	allow := policy.Decision{Verdict: policy.Allow, Rule: "default"}
	b.ReportAllocs()
	for b.Loop() {
		o := op{kind: opQuery, stmt: st}
		o.tel = s.telStatement(st, policy.StageQuery, allow, time.Now())
		s.telResult(&o, 1, "")
		s.telDone(&o)
		s.tel.up += 100
		s.telFlushUp()
	}
}

// BenchmarkTelemetryOff is the per-statement cost of telemetry with the
// default providers (no SDK installed).
func BenchmarkTelemetryOff(b *testing.B) {
	benchmarkTelemetry(b, func(*Proxy) {})
}

// BenchmarkTelemetryOn is the per-statement cost with an SDK tracer (every
// span sampled, none exported) and meter.
func BenchmarkTelemetryOn(b *testing.B) {
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	b.Cleanup(func() {
		tp.Shutdown(context.Background())
		mp.Shutdown(context.Background())
	})
	benchmarkTelemetry(b, func(p *Proxy) {
		p.TracerProvider, p.MeterProvider = tp, mp
		p.telemetryOnce = sync.Once{}
	})
}
