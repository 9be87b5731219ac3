package auth_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gaia-platform/gaia/internal/auth"
	"github.com/gaia-platform/gaia/internal/config"
)

func loadLimits(vars map[string]string) (auth.Limits, error) {
	l := config.NewLoader(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	c := auth.LoadConfig(l)
	return c.Limits, l.Err()
}

func TestPerRoleRateLimitVariables(t *testing.T) {
	for _, tt := range []struct {
		name string
		vars map[string]string
		want auth.Limits
	}{
		{"none set: one limit for every role", nil,
			auth.Limits{Rate: 1000, Burst: 2000}},
		{"apps post from thousands of browsers", map[string]string{"AUTH_APP_RATE_LIMIT": "50000", "AUTH_APP_RATE_BURST": "100000"},
			auth.Limits{Rate: 1000, Burst: 2000, Roles: map[auth.Role]auth.RoleLimits{auth.RoleApp: {Rate: 50000, Burst: 100000}}}},
		{"a rate alone keeps the general burst", map[string]string{"AUTH_ADMIN_RATE_LIMIT": "10"},
			auth.Limits{Rate: 1000, Burst: 2000, Roles: map[auth.Role]auth.RoleLimits{auth.RoleAdmin: {Rate: 10}}}},
		{"0 turns one role's limits off", map[string]string{"AUTH_TEACHER_RATE_LIMIT": "0", "AUTH_SESSION_RATE_BURST": "50"},
			auth.Limits{Rate: 1000, Burst: 2000, Roles: map[auth.Role]auth.RoleLimits{auth.RoleTeacher: {Rate: -1}, auth.RoleSession: {Burst: 50}}}},
		{"a role's limit with the general one off", map[string]string{"AUTH_RATE_LIMIT": "0", "AUTH_OPERATOR_RATE_LIMIT": " 5 "},
			auth.Limits{Rate: -1, Burst: 2000, Roles: map[auth.Role]auth.RoleLimits{auth.RoleOperator: {Rate: 5}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := loadLimits(tt.vars)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("limits = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestBadPerRoleRateLimitNamesTheVariable(t *testing.T) {
	for _, tt := range []struct {
		name, value, wantExpected string
	}{
		{"AUTH_APP_RATE_LIMIT", "fast", "an integer from 0 to 1000000 (unset: the value of AUTH_RATE_LIMIT)"},
		{"AUTH_APP_RATE_LIMIT", "-1", "an integer from 0 to 1000000 (unset: the value of AUTH_RATE_LIMIT)"},
		{"AUTH_APP_RATE_LIMIT", "", "an integer from 0 to 1000000 (unset: the value of AUTH_RATE_LIMIT)"},
		{"AUTH_TEACHER_RATE_BURST", "0", "an integer from 1 to 10000000 (unset: the value of AUTH_RATE_BURST)"},
		{"AUTH_SESSION_RATE_BURST", "1e6", "an integer from 1 to 10000000 (unset: the value of AUTH_RATE_BURST)"},
	} {
		_, err := loadLimits(map[string]string{tt.name: tt.value})
		var ce *config.Error
		if !errors.As(err, &ce) {
			t.Fatalf("%s=%q: %v, want a config.Error", tt.name, tt.value, err)
		}
		if ce.Var != tt.name || ce.Value != tt.value || ce.Expected != tt.wantExpected {
			t.Errorf("%s=%q: %+v, want it named, expecting %q", tt.name, tt.value, *ce, tt.wantExpected)
		}
		if !strings.Contains(err.Error(), tt.name) {
			t.Errorf("message %q does not name %s", err, tt.name)
		}
	}
}

func TestServiceCredentialsHaveNoRateLimitVariables(t *testing.T) {
	l := config.NewLoader(func(string) (string, bool) { return "", false })
	auth.LoadConfig(l)
	read := map[string]bool{}
	for _, v := range l.Vars() {
		read[v.Name] = true
	}
	for _, r := range auth.LimitedRoles {
		limit, burst := auth.RoleRateLimitVars(r)
		if !read[limit] || !read[burst] {
			t.Errorf("role %s: %s and %s are not read", r, limit, burst)
		}
	}
	if read["AUTH_SERVICE_RATE_LIMIT"] {
		t.Error("AUTH_SERVICE_RATE_LIMIT is read, but service credentials are not limited")
	}
}

// drain counts the calls key's bucket takes before it refuses one (up to
// max).
func drain(l *auth.Limiter, role auth.Role, key string, max int) int {
	for i := range max {
		if l.AllowRole(role, key) != nil {
			return i
		}
	}
	return max
}

func TestLimiterSizesBucketsByRole(t *testing.T) {
	l := auth.NewLimiter(auth.Limits{Rate: 0.001, Burst: 2, Roles: map[auth.Role]auth.RoleLimits{
		auth.RoleApp:     {Rate: 0.001, Burst: 7},
		auth.RoleTeacher: {Rate: -1},
		auth.RoleAdmin:   {Rate: 0.002}, // burst from the general limits
	}})
	for _, tt := range []struct {
		role auth.Role
		want int
	}{
		{auth.RoleApp, 7},
		{auth.RoleOperator, 2}, // no override: the general limits
		{auth.RoleAdmin, 2},
		{auth.RoleTeacher, 100}, // off: never refused
		{"", 2},
	} {
		if got := drain(l, tt.role, "cred:"+string(tt.role), 100); got != tt.want {
			t.Errorf("%q credential: %d calls before a refusal, want %d", tt.role, got, tt.want)
		}
	}
	// The refusal says whose limit it is and which.
	err := l.AllowRole(auth.RoleApp, "cred:app")
	if err == nil || !strings.Contains(err.Error(), "app credential") || !strings.Contains(err.Error(), "burst 7") {
		t.Fatalf("refusal: %v, want it to name the app credential's burst 7", err)
	}
	// Reserve, as the gateway calls it, keeps the general limits.
	if d := l.Reserve("ip:10.0.0.1"); d != 0 {
		t.Fatalf("first Reserve waits %v", d)
	}
}

func TestGeneralLimitsOffLeaveAnOverriddenRoleLimited(t *testing.T) {
	l := auth.NewLimiter(auth.Limits{Rate: -1, Roles: map[auth.Role]auth.RoleLimits{auth.RoleApp: {Rate: 0.001, Burst: 3}}})
	if got := drain(l, auth.RoleApp, "cred:a", 100); got != 3 {
		t.Fatalf("app: %d calls, want 3", got)
	}
	if got := drain(l, auth.RoleOperator, "cred:o", 100); got != 100 {
		t.Fatalf("operator with limits off: refused after %d calls", got)
	}
}
