// Package logging builds the one zap.Logger a GAIA process writes with, to
// stderr, as JSON for machines or plain console lines for people, with
// ISO 8601 timestamps.
//
// It owns only construction. The logger is passed down explicitly from main;
// this package keeps no global logger and never replaces zap's.
package logging
