package adapters

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"
	"google.golang.org/grpc/status"

	"github.com/gaia-platform/gaia/internal/domainerr"
	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
)

// DashboardClassrooms is the metrics service's auth.ClassroomResolver: a
// teacher's classrooms are assigned in the dashboard service, so it asks the
// dashboard's ListTeacherClassrooms (with the connection's service
// credential) and keeps each teacher's answer for TTL, an empty one too, so
// that an unassignment takes effect within TTL. Concurrent misses for one
// teacher share one call (singleflight). When the dashboard cannot answer,
// the check fails closed: UNAVAILABLE naming the reason, and nothing cached.
type DashboardClassrooms struct {
	ttl     time.Duration
	timeout time.Duration
	now     func() time.Time
	group   singleflight.Group

	mu      sync.Mutex
	addr    string
	client  dashboardv1.DashboardServiceClient
	entries map[string]classroomsEntry
}

type classroomsEntry struct {
	classrooms map[string]bool
	expires    time.Time
}

// maxCachedTeachers bounds the cache; expired entries are dropped when it
// is reached.
const maxCachedTeachers = 10000

// NewDashboardClassrooms builds the resolver; SetConn gives it the
// dashboard (until then every check answers UNAVAILABLE).
func NewDashboardClassrooms(ttl time.Duration) *DashboardClassrooms {
	return &DashboardClassrooms{ttl: ttl, timeout: 5 * time.Second, now: time.Now, entries: map[string]classroomsEntry{}}
}

// SetConn points the resolver at conn, the connection to the dashboard at
// addr (named in errors), and forgets what it cached. gaia up calls it
// again once it knows the dashboard's address.
func (d *DashboardClassrooms) SetConn(conn grpc.ClientConnInterface, addr string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.client, d.addr, d.entries = dashboardv1.NewDashboardServiceClient(conn), addr, map[string]classroomsEntry{}
}

// TeacherHasClassroom reports whether classroomID is assigned to teacherID.
func (d *DashboardClassrooms) TeacherHasClassroom(ctx context.Context, teacherID, classroomID string) (bool, error) {
	set, err := d.classrooms(ctx, teacherID)
	if err != nil {
		return false, err
	}
	return set[classroomID], nil
}

func (d *DashboardClassrooms) classrooms(ctx context.Context, teacherID string) (map[string]bool, error) {
	d.mu.Lock()
	e, ok := d.entries[teacherID]
	d.mu.Unlock()
	if ok && d.now().Before(e.expires) {
		return e.classrooms, nil
	}
	ch := d.group.DoChan(teacherID, func() (any, error) {
		d.mu.Lock()
		client, addr := d.client, d.addr
		d.mu.Unlock()
		if client == nil {
			return nil, domainerr.New(domainerr.Unavailable, "cannot check teacher "+quoteID(teacherID)+"'s classrooms: no dashboard service is configured yet")
		}
		// The call is shared by every caller waiting on this teacher, so
		// it does not end with the first caller's context.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d.timeout)
		defer cancel()
		resp, err := client.ListTeacherClassrooms(cctx, &dashboardv1.ListTeacherClassroomsRequest{TeacherId: teacherID})
		if err != nil {
			return nil, domainerr.New(domainerr.Unavailable, "cannot check teacher "+quoteID(teacherID)+"'s classrooms: the dashboard service at "+addr+" did not answer: "+status.Convert(err).Message())
		}
		set := make(map[string]bool, len(resp.GetAssignments()))
		for _, a := range resp.GetAssignments() {
			set[a.GetClassroomId()] = true
		}
		d.store(teacherID, set)
		return set, nil
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(map[string]bool), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (d *DashboardClassrooms) store(teacherID string, set map[string]bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	if len(d.entries) >= maxCachedTeachers {
		for k, e := range d.entries {
			if !now.Before(e.expires) {
				delete(d.entries, k)
			}
		}
	}
	d.entries[teacherID] = classroomsEntry{classrooms: set, expires: now.Add(d.ttl)}
}

func quoteID(s string) string {
	if len(s) > 64 {
		s = s[:64] + "…"
	}
	return "\"" + s + "\""
}
