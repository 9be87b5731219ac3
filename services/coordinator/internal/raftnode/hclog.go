package raftnode

import (
	"io"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/zap"
)

// newHCLogger gives hashicorp/raft an hclog.Logger whose records go to zap, so
// that the coordinator writes one log stream in one format. zap filters by level.
// A record for which quiet (when set) returns true is written at debug level.
func newHCLogger(log *zap.Logger, quiet func(msg string) bool) hclog.Logger {
	l := hclog.NewInterceptLogger(&hclog.LoggerOptions{
		Name:   "raft",
		Level:  hclog.Off,
		Output: io.Discard,
	})
	l.RegisterSink(&zapSink{log: log, quiet: quiet}) // a pointer: hclog keeps sinks as map keys
	return l
}

type zapSink struct {
	log   *zap.Logger
	quiet func(msg string) bool
}

func (s *zapSink) Accept(name string, level hclog.Level, msg string, args ...interface{}) {
	fields := make([]zap.Field, 0, len(args)/2)
	for i := 0; i+1 < len(args); i += 2 {
		key, ok := args[i].(string)
		if !ok {
			continue
		}
		fields = append(fields, zap.Any(key, args[i+1]))
	}
	if level > hclog.Debug && s.quiet != nil && s.quiet(msg) {
		level = hclog.Debug
	}
	switch level {
	case hclog.Trace, hclog.Debug:
		s.log.Debug(msg, fields...)
	case hclog.Info:
		s.log.Info(msg, fields...)
	case hclog.Warn:
		s.log.Warn(msg, fields...)
	default:
		s.log.Error(msg, fields...)
	}
}
