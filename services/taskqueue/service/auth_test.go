package service_test

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/grpcclient"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
	"github.com/gaia-platform/gaia/services/taskqueue/queuetest"
)

// The task queue enforces the policy table on its own port (the issue-9
// attack read every payload and cancelled anyone's tasks without a
// credential), and a credential revoked in the coordinator is refused by the
// queue within 10 s, with the default revocation poll.
func TestQueueRefusesWithoutCredentialAndHonoursRevocation(t *testing.T) {
	e := startQueueEnv(t, coordtest.Options{LeaseTimeout: time.Minute}, queuetest.Options{})
	ctx := testCtx(t, time.Minute)
	dial := func(token string) taskqueuev1.TaskServiceClient {
		conn, err := grpcclient.Dial(e.q.Addr, grpcclient.WithBearer(token))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return taskqueuev1.NewTaskServiceClient(conn)
	}
	if _, err := dial("").ListTasks(ctx, &taskqueuev1.ListTasksRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("ListTasks without a credential: %v, want Unauthenticated", err)
	}
	if _, err := dial("").CancelTask(ctx, &taskqueuev1.CancelTaskRequest{TaskId: "00000000-0000-0000-0000-000000000001"}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("CancelTask without a credential: %v, want Unauthenticated", err)
	}
	teacher := e.coord.Keys.Token(t, auth.Spec{Role: auth.RoleTeacher, TeacherID: "t1", TTL: time.Hour})
	if _, err := dial(teacher).ListTasks(ctx, &taskqueuev1.ListTasksRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("ListTasks as a teacher: %v, want PermissionDenied", err)
	}

	issued, err := e.coordc.Auth().IssueCredential(ctx, &coordinatorv1.IssueCredentialRequest{Role: coordinatorv1.Role_ROLE_OPERATOR, Name: "ci", Ttl: durationpb.New(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	op := dial(issued.GetToken())
	if _, err := op.ListTasks(ctx, &taskqueuev1.ListTasksRequest{}); err != nil {
		t.Fatalf("ListTasks as an operator: %v", err)
	}
	revoked := time.Now()
	if _, err := e.coordc.Auth().RevokeCredential(ctx, &coordinatorv1.RevokeCredentialRequest{CredentialId: issued.GetCredential().GetCredentialId()}); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := op.ListTasks(ctx, &taskqueuev1.ListTasksRequest{})
		if status.Code(err) == codes.Unauthenticated {
			break
		}
		if time.Since(revoked) > 10*time.Second {
			t.Fatalf("the task queue still accepts a credential revoked 10 s ago (%v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("the task queue refused the revoked credential %v after RevokeCredential", time.Since(revoked).Round(time.Millisecond))
}
