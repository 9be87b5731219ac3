package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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

// TestSessionRunJSONKeepsEveryStdoutLineJSON: under --json the command's
// raw output was written to stdout between the JSON events unless --quiet
// was added, so a script reading the events broke on the first odd line.
func TestSessionRunJSONKeepsEveryStdoutLineJSON(t *testing.T) {
	var buf bytes.Buffer
	out := &syncWriter{w: &buf}
	h := &commandHandler{argv: []string{"sh", "-c", `echo plain; echo '{"half": '; printf 'bad \377\n'; echo err >&2; printf 'no newline'`}, workDir: t.TempDir(), json: true, out: out}
	task := &agent.Task{ID: "t1", Attempt: 2, SessionName: "w", Payload: []byte("{}")}
	printEvent(out, true, "w", agent.Event{Kind: "claimed", TaskID: task.ID, Attempt: task.Attempt})
	if _, err := h.run(context.Background(), task); err != nil {
		t.Fatalf("run: %v", err)
	}
	printEvent(out, true, "w", agent.Event{Kind: "completed", TaskID: task.ID, Attempt: task.Attempt})
	var lines []string
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var e struct {
			Event, Line string
			TaskID      string `json:"task_id"`
			Attempt     int
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("stdout line %q is not JSON: %v", sc.Text(), err)
		}
		if e.Event == "output" {
			if e.TaskID != "t1" || e.Attempt != 2 {
				t.Errorf("output event %s names task %q attempt %d", sc.Text(), e.TaskID, e.Attempt)
			}
			lines = append(lines, e.Line)
		}
	}
	want := []string{"plain", `{"half": `, "bad \uFFFD", "err", "no newline"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("output lines = %q, want %q", lines, want)
	}
}

// TestSessionRunEchoesLinesWithTheirTask: without --json each line is
// prefixed with its task; a line without a newline is shown at the end, and
// a line without any newline is shown in pieces instead of held whole.
func TestSessionRunEchoesLinesWithTheirTask(t *testing.T) {
	var buf bytes.Buffer
	h := &commandHandler{argv: []string{"sh", "-c", `echo one; printf two`}, workDir: t.TempDir(), out: &syncWriter{w: &buf}}
	if _, err := h.run(context.Background(), &agent.Task{ID: "0123456789", Attempt: 1, SessionName: "w", Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "[01234567] one\n[01234567] two\n"; got != want {
		t.Fatalf("echo = %q, want %q", got, want)
	}
	var pieces int
	w := &lineWriter{emit: func(line []byte) { pieces++ }}
	_, _ = w.Write(bytes.Repeat([]byte("x"), 3*maxEchoLine+1))
	if pieces != 3 || len(w.partial) != 1 {
		t.Fatalf("a %d-byte line without newline: %d pieces, %d bytes held", 3*maxEchoLine+1, pieces, len(w.partial))
	}
}
