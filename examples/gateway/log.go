package main

import (
	"io"
	"log/slog"
	"strings"
)

// newLogger returns the logger that log.level and log.format ask for,
// writing to w (the gateway logs to stderr).
func newLogger(cfg *config, w io.Writer) *slog.Logger {
	var level slog.Level
	// validate has checked the level, so UnmarshalText cannot fail here.
	_ = level.UnmarshalText([]byte(strings.ToUpper(string(cfg.Log.Level))))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
