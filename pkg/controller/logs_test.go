package controller

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
)

// logBuffer is the controller's text log as an operator reads it, safe to
// write from the controller's goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// logRecords is a slog handler that keeps the controller's records, every
// level, for tests that read a record's level or attributes.
type logRecords struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler       { return l }
func (l *logRecords) WithGroup(string) slog.Handler            { return l }

func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.recs) < 1000 { // a loop that logs without pause must not eat the machine
		l.recs = append(l.recs, r.Clone())
	}
	return nil
}
