package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// serviceName is the OpenTelemetry service.name of the gateway's traces
// and metrics.
const serviceName = "pgwarden"

// telemetry is what the telemetry section builds: the providers handed to
// the proxy (never installed as OpenTelemetry's globals) and the /metrics
// handler. A nil *telemetry is no telemetry.
type telemetry struct {
	// traces exports spans with OTLP; nil without telemetry.otlp.
	traces *sdktrace.TracerProvider
	// meters reads the metrics for OTLP and Prometheus; nil when neither
	// is configured.
	meters *sdkmetric.MeterProvider
	// metrics serves the Prometheus text format; nil unless
	// telemetry.prometheus.enabled.
	metrics http.Handler
}

// buildTelemetry builds the telemetry section's providers; nil without
// one. Nothing connects here: the OTLP exporters send in the background
// (their failures go to OpenTelemetry's error handler), and Prometheus is
// scraped.
func buildTelemetry(ctx context.Context, cfg *config) (*telemetry, error) {
	tc := cfg.Telemetry
	if tc == nil || (tc.OTLP == nil && !cfg.prometheusEnabled()) {
		return nil, nil
	}
	res := resource.NewSchemaless(attribute.String("service.name", serviceName))
	t := &telemetry{}
	var readers []sdkmetric.Option
	if o := tc.OTLP; o != nil {
		traceOpts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(string(o.Endpoint))}
		metricOpts := []otlpmetrichttp.Option{otlpmetrichttp.WithEndpoint(string(o.Endpoint))}
		if o.Insecure {
			traceOpts = append(traceOpts, otlptracehttp.WithInsecure())
			metricOpts = append(metricOpts, otlpmetrichttp.WithInsecure())
		}
		spans, err := otlptracehttp.New(ctx, traceOpts...)
		if err != nil {
			return nil, cfg.problemAt("telemetry.otlp", "%w", err)
		}
		points, err := otlpmetrichttp.New(ctx, metricOpts...)
		if err != nil {
			spans.Shutdown(ctx)
			return nil, cfg.problemAt("telemetry.otlp", "%w", err)
		}
		t.traces = sdktrace.NewTracerProvider(sdktrace.WithBatcher(spans), sdktrace.WithResource(res))
		readers = append(readers, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(points)))
	}
	if cfg.prometheusEnabled() {
		// A registry of its own: nothing registered elsewhere in the
		// process (prometheus.DefaultRegisterer) is exposed.
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		exp, err := otelprom.New(otelprom.WithRegisterer(reg))
		if err != nil {
			t.shutdown(ctx)
			return nil, cfg.problemAt("telemetry.prometheus", "%w", err)
		}
		readers = append(readers, sdkmetric.WithReader(exp))
		t.metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	}
	t.meters = sdkmetric.NewMeterProvider(append(readers, sdkmetric.WithResource(res))...)
	return t, nil
}

// providers returns the tracer and meter providers for the proxy: the
// configured ones, and OpenTelemetry's no-op providers for what is not
// configured, so that the proxy never falls back to the process's global
// providers.
func (t *telemetry) providers() (trace.TracerProvider, metric.MeterProvider) {
	var tp trace.TracerProvider = tracenoop.NewTracerProvider()
	var mp metric.MeterProvider = metricnoop.NewMeterProvider()
	if t != nil && t.traces != nil {
		tp = t.traces
	}
	if t != nil && t.meters != nil {
		mp = t.meters
	}
	return tp, mp
}

// shutdown flushes and stops the exporters, bounded by ctx. It does
// nothing on a nil *telemetry.
func (t *telemetry) shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	var errs []error
	if t.traces != nil {
		errs = append(errs, t.traces.Shutdown(ctx))
	}
	if t.meters != nil {
		errs = append(errs, t.meters.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// otelErrorHandler routes OpenTelemetry's internal errors (an export that
// failed, for example) to the gateway's log.
type otelErrorHandler struct{ log *slog.Logger }

// Handle implements otel.ErrorHandler.
func (h otelErrorHandler) Handle(err error) {
	h.log.Warn("pgwarden: telemetry", "err", err)
}
