package main

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/gaia-platform/gaia/agent"
)

// TestSessionRunOutputTailCutInsideACharacterStillCompletes: a command that
// exited 0 after printing "é" × 3000 had its 4 KiB tail cut inside a
// character, the result was not valid UTF-8 and the task was marked DEAD.
// Invalid bytes and NUL (which PostgreSQL refuses) did the same.
func TestSessionRunOutputTailCutInsideACharacterStillCompletes(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		wantSuffix   string
	}{
		// 6,001 bytes: the 4 KiB tail starts inside an "é".
		{"cut inside a character", `i=0; while [ $i -lt 3000 ]; do printf 'é'; i=$((i+1)); done; printf x`, "éx"},
		{"invalid byte", `printf 'ok \377 done'`, "ok \uFFFD done"},
		{"NUL byte", `printf 'a\000b'`, "a\uFFFDb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &commandHandler{argv: []string{"sh", "-c", tc.script}, workDir: t.TempDir(), quiet: true}
			result, err := h.run(context.Background(), &agent.Task{ID: "t1", Attempt: 1, SessionName: "w", Payload: []byte("{}")})
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			out, _ := result["output"].(string)
			if !utf8.ValidString(out) || strings.ContainsRune(out, 0) || !strings.HasSuffix(out, tc.wantSuffix) {
				t.Fatalf("output = %q (valid UTF-8: %v), want valid text without NUL ending in %q", out, utf8.ValidString(out), tc.wantSuffix)
			}
			if len(out) > outputTail+2 && tc.name == "cut inside a character" {
				t.Fatalf("output is %d bytes, want about %d", len(out), outputTail)
			}
			if strings.HasPrefix(out, "\uFFFD") {
				t.Fatalf("output starts with a replacement character: the cut was not moved to a character boundary")
			}
			if _, err := structpb.NewStruct(result); err != nil {
				t.Fatalf("result cannot become a task result: %v", err)
			}
		})
	}
}

// TestSessionRunFailureLineIsValidUTF8: the failure message is the output's
// last line, cut to 512 bytes; cut inside a character it could not be sent.
func TestSessionRunFailureLineIsValidUTF8(t *testing.T) {
	line := lastLine(strings.Repeat("é", 600) + "x")
	if !utf8.ValidString(line) || len(line) > 512 {
		t.Fatalf("lastLine = %d bytes, valid UTF-8 %v", len(line), utf8.ValidString(line))
	}
}
