package logging

import (
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Levels and Formats are the accepted spellings, for config.Loader.Enum.
var (
	Levels  = []string{"debug", "info", "warn", "error"}
	Formats = []string{"json", "console"}
)

var levels = map[string]zapcore.Level{
	"debug": zapcore.DebugLevel,
	"info":  zapcore.InfoLevel,
	"warn":  zapcore.WarnLevel,
	"error": zapcore.ErrorLevel,
}

// New returns a logger writing to stderr at level (debug, info, warn or
// error) in format (json or console).
func New(level, format string) (*zap.Logger, error) {
	return newLogger(level, format, zapcore.Lock(os.Stderr))
}

func newLogger(level, format string, out zapcore.WriteSyncer) (*zap.Logger, error) {
	lvl, ok := levels[strings.ToLower(level)]
	if !ok {
		return nil, fmt.Errorf("log level %q: want one of %s", level, strings.Join(Levels, ", "))
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.EncodeDuration = zapcore.StringDurationEncoder

	var encoder zapcore.Encoder
	switch strings.ToLower(format) {
	case "json":
		encoder = zapcore.NewJSONEncoder(enc)
	case "console":
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	default:
		return nil, fmt.Errorf("log format %q: want one of %s", format, strings.Join(Formats, ", "))
	}
	// No sampling: GAIA's volume is low and a dropped line is the one
	// somebody will be looking for. No automatic stack traces on errors
	// either: they would point into the gRPC interceptor, not the cause;
	// code that has a useful stack logs it as a field.
	return zap.New(zapcore.NewCore(encoder, out, lvl), zap.AddCaller(), zap.ErrorOutput(out)), nil
}
