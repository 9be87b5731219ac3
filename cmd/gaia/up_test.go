package main

import (
	"strings"
	"testing"
)

// gaia up prints the teacher page's address with the demo teacher's token in
// the fragment (never sent to the server), so that opening it signs in; the
// token is not in a query string, which would reach the access logs.
func TestPrintTeacherPageLinksTheDemoTeacher(t *testing.T) {
	var creds []*localCredential
	for _, c := range localCredentialSpecs() {
		c.token = "tok-" + c.label
		creds = append(creds, c)
	}
	var out strings.Builder
	printTeacherPage(&out, "http://127.0.0.1:8080", creds)
	if !strings.Contains(out.String(), "http://127.0.0.1:8080/#token=tok-teacher\n") || strings.Contains(out.String(), "?token") {
		t.Fatalf("the summary does not link the page signed in as the demo teacher:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "demo-teacher") {
		t.Fatalf("the summary does not name the demo teacher:\n%s", out.String())
	}

	out.Reset()
	printTeacherPage(&out, "http://127.0.0.1:8080", nil) // GAIA_AUTH=off
	if !strings.Contains(out.String(), "http://127.0.0.1:8080/?teacher=TEACHER_ID") || strings.Contains(out.String(), "#token") {
		t.Fatalf("without credentials the summary should point at the page by teacher id:\n%s", out.String())
	}
}
