package ports

import (
	"context"
	"errors"
	"testing"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/domainerr"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
)

// A teacher who names no classroom would read every classroom's
// frustration events: refused, naming classroom_ids.
func TestTeacherMustNameClassrooms(t *testing.T) {
	ctx := auth.NewContext(context.Background(), auth.Principal{Role: auth.RoleTeacher, TeacherID: "t1"})
	s := &MetricsServer{}
	_, err := s.ListFrustrationEvents(ctx, &metricsv1.ListFrustrationEventsRequest{})
	var de *domainerr.Error
	if !errors.As(err, &de) || de.Kind != domainerr.InvalidArgument || de.Field != "classroom_ids" {
		t.Fatalf("teacher listing all classrooms: %v", err)
	}
	if _, err := classroomFilter(ctx, []string{"c1"}); err != nil {
		t.Fatalf("teacher naming a classroom: %v", err)
	}
	admin := auth.NewContext(context.Background(), auth.Principal{Role: auth.RoleAdmin})
	if _, err := classroomFilter(admin, nil); err != nil {
		t.Fatalf("an admin may list all: %v", err)
	}
	if _, err := classroomFilter(context.Background(), []string{"ok", ""}); err == nil {
		t.Fatal("an empty classroom id must be refused")
	}
}
