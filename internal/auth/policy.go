package auth

import (
	"slices"
	"sort"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	taskqueuev1 "github.com/gaia-platform/gaia/proto/gaia/taskqueue/v1"
)

// Scope is the rule an allowed role must still pass for one call.
type Scope string

const (
	// ScopeNone: the role is enough.
	ScopeNone Scope = "none"
	// ScopeSessionToken: a session proves itself with the session id and
	// token in the request (its join secret to register); the serving
	// handler checks them, so a call with no bearer credential passes the
	// interceptor as RoleSession. Another role's bearer credential, when
	// present, must be one the entry allows.
	ScopeSessionToken Scope = "session_token"
	// ScopeRequest: every scope field of the request must lie inside the
	// caller's credential, checked by the interceptor at any depth of the
	// request (each event of a batch, each message of a client stream):
	//   app_id           == an app's app id
	//   classroom_id(s)  ∈ an app's classrooms (when it names any), or
	//                    assigned to a teacher (ClassroomResolver)
	//   teacher_id       == a teacher's teacher id
	//   project          ∈ an operator's projects (when it names any)
	// Fields the request leaves empty are the handler's to fill from
	// FromContext (a teacher listing "all" alerts sees its own only).
	ScopeRequest Scope = "request"
)

// Policy says who may call one RPC.
type Policy struct {
	// Roles that may call it. Empty with Public set means anyone.
	Roles []Role
	Scope Scope
	// Public methods need no credential at all (health, reflection).
	Public bool
	// Audit logs every call with who made it (logger "audit").
	Audit bool
	// Handler names a scope check the request's fields cannot express, which
	// the serving handler makes with the Require helpers.
	Handler string
}

// Allows reports whether role may call the method (scope aside).
func (p Policy) Allows(r Role) bool { return p.Public || slices.Contains(p.Roles, r) }

// Handler notes of the task queue's project scope (docs/SECURITY.md,
// "Operators limited to projects").
const (
	taskProject = "the lesson's project, for an operator limited to projects (RequireProject); another project's looks missing"
	projectList = "an operator limited to projects lists its projects only"
)

// Role sets the table uses.
var (
	adminOnly = []Role{RoleAdmin}
	operators = []Role{RoleAdmin, RoleOperator}
	readers   = []Role{RoleAdmin, RoleOperator, RoleService}
	// A service may run agent sessions of its own (the metrics detector
	// holds partition locks as one), presenting its service credential
	// beside the session token.
	sessions   = []Role{RoleAdmin, RoleOperator, RoleSession, RoleService}
	lockers    = sessions
	services   = []Role{RoleAdmin, RoleService}
	apps       = []Role{RoleAdmin, RoleApp, RoleService}
	teachers   = []Role{RoleAdmin, RoleTeacher}
	classViews = []Role{RoleAdmin, RoleTeacher, RoleService}
)

// policies is THE policy table: every RPC of every GAIA service, the roles
// that may call it and the scope rule. The interceptor in internal/grpcserver
// refuses a method missing here (PERMISSION_DENIED), and a test fails when a
// registered RPC has no entry.
var policies = map[string]Policy{
	// Health and reflection: load balancers and grpcurl, no credential.
	"/grpc.health.v1.Health/Check":                                   {Public: true, Scope: ScopeNone},
	"/grpc.health.v1.Health/Watch":                                   {Public: true, Scope: ScopeNone},
	"/grpc.health.v1.Health/List":                                    {Public: true, Scope: ScopeNone},
	"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      {Public: true, Scope: ScopeNone},
	"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": {Public: true, Scope: ScopeNone},

	// gaia.coordinator.v1.SessionService
	coordinatorv1.SessionService_RegisterSession_FullMethodName:   {Roles: sessions, Scope: ScopeSessionToken},
	coordinatorv1.SessionService_Heartbeat_FullMethodName:         {Roles: sessions, Scope: ScopeSessionToken},
	coordinatorv1.SessionService_GetSession_FullMethodName:        {Roles: readers, Scope: ScopeNone},
	coordinatorv1.SessionService_ListSessions_FullMethodName:      {Roles: readers, Scope: ScopeNone},
	coordinatorv1.SessionService_DeregisterSession_FullMethodName: {Roles: sessions, Scope: ScopeSessionToken},
	coordinatorv1.SessionService_VerifySession_FullMethodName:     {Roles: services, Scope: ScopeNone},
	coordinatorv1.SessionService_WatchSessions_FullMethodName:     {Roles: readers, Scope: ScopeNone},
	// gaia.coordinator.v1.LockService
	coordinatorv1.LockService_AcquireLock_FullMethodName: {Roles: lockers, Scope: ScopeSessionToken},
	coordinatorv1.LockService_RenewLock_FullMethodName:   {Roles: lockers, Scope: ScopeSessionToken},
	coordinatorv1.LockService_ReleaseLock_FullMethodName: {Roles: lockers, Scope: ScopeSessionToken},
	coordinatorv1.LockService_GetLock_FullMethodName:     {Roles: readers, Scope: ScopeNone},
	coordinatorv1.LockService_ListLocks_FullMethodName:   {Roles: readers, Scope: ScopeNone},
	// gaia.coordinator.v1.ClusterService
	coordinatorv1.ClusterService_GetClusterStatus_FullMethodName:   {Roles: readers, Scope: ScopeNone},
	coordinatorv1.ClusterService_AddVoter_FullMethodName:           {Roles: adminOnly, Scope: ScopeNone, Audit: true},
	coordinatorv1.ClusterService_RemoveServer_FullMethodName:       {Roles: adminOnly, Scope: ScopeNone, Audit: true},
	coordinatorv1.ClusterService_TransferLeadership_FullMethodName: {Roles: adminOnly, Scope: ScopeNone, Audit: true},
	// gaia.coordinator.v1.AuthService
	coordinatorv1.AuthService_IssueCredential_FullMethodName:  {Roles: adminOnly, Scope: ScopeNone, Audit: true},
	coordinatorv1.AuthService_ListCredentials_FullMethodName:  {Roles: adminOnly, Scope: ScopeNone},
	coordinatorv1.AuthService_RevokeCredential_FullMethodName: {Roles: adminOnly, Scope: ScopeNone, Audit: true},
	coordinatorv1.AuthService_ListRevocations_FullMethodName:  {Roles: services, Scope: ScopeNone},

	// gaia.taskqueue.v1.TaskService
	taskqueuev1.TaskService_EnqueueTask_FullMethodName:   {Roles: operators, Scope: ScopeRequest, Handler: taskProject},
	taskqueuev1.TaskService_EnqueueTasks_FullMethodName:  {Roles: operators, Scope: ScopeRequest, Handler: taskProject},
	taskqueuev1.TaskService_ClaimTasks_FullMethodName:    {Roles: sessions, Scope: ScopeSessionToken},
	taskqueuev1.TaskService_ExtendClaim_FullMethodName:   {Roles: sessions, Scope: ScopeSessionToken},
	taskqueuev1.TaskService_CompleteTask_FullMethodName:  {Roles: sessions, Scope: ScopeSessionToken},
	taskqueuev1.TaskService_CompleteTasks_FullMethodName: {Roles: sessions, Scope: ScopeSessionToken},
	taskqueuev1.TaskService_FailTask_FullMethodName:      {Roles: sessions, Scope: ScopeSessionToken},
	taskqueuev1.TaskService_CancelTask_FullMethodName:    {Roles: operators, Scope: ScopeRequest, Audit: true, Handler: taskProject},
	taskqueuev1.TaskService_RetryTask_FullMethodName:     {Roles: operators, Scope: ScopeRequest, Audit: true, Handler: taskProject},
	taskqueuev1.TaskService_GetTask_FullMethodName:       {Roles: operators, Scope: ScopeRequest, Handler: taskProject},
	taskqueuev1.TaskService_ListTasks_FullMethodName:     {Roles: operators, Scope: ScopeRequest, Handler: projectList},
	// gaia.taskqueue.v1.LessonService
	taskqueuev1.LessonService_CreateLesson_FullMethodName:          {Roles: operators, Scope: ScopeRequest},
	taskqueuev1.LessonService_GetLesson_FullMethodName:             {Roles: operators, Scope: ScopeRequest, Handler: taskProject},
	taskqueuev1.LessonService_ListLessons_FullMethodName:           {Roles: operators, Scope: ScopeRequest, Handler: projectList},
	taskqueuev1.LessonService_UpdateLesson_FullMethodName:          {Roles: operators, Scope: ScopeRequest, Audit: true, Handler: taskProject},
	taskqueuev1.LessonService_SetSessionAffinity_FullMethodName:    {Roles: operators, Scope: ScopeRequest, Audit: true, Handler: taskProject},
	taskqueuev1.LessonService_ListSessionAffinities_FullMethodName: {Roles: operators, Scope: ScopeRequest, Handler: projectList},
	taskqueuev1.LessonService_DeleteSessionAffinity_FullMethodName: {Roles: operators, Scope: ScopeRequest, Audit: true, Handler: taskProject},

	// gaia.metrics.v1.MetricsService
	metricsv1.MetricsService_RecordMetrics_FullMethodName:           {Roles: apps, Scope: ScopeRequest},
	metricsv1.MetricsService_SubmitRating_FullMethodName:            {Roles: apps, Scope: ScopeRequest},
	metricsv1.MetricsService_GetRatingSummary_FullMethodName:        {Roles: []Role{RoleAdmin, RoleApp, RoleTeacher, RoleService}, Scope: ScopeRequest, Handler: "an empty app_id means an app's own (FromContext); a teacher must name classroom_id"},
	metricsv1.MetricsService_ListFrustrationEvents_FullMethodName:   {Roles: classViews, Scope: ScopeRequest, Handler: "a teacher must name classroom_ids, each assigned to it"},
	metricsv1.MetricsService_WatchFrustrationEvents_FullMethodName:  {Roles: classViews, Scope: ScopeRequest, Handler: "a teacher must name classroom_ids, each assigned to it"},
	metricsv1.MetricsService_GetClassroomSnapshot_FullMethodName:    {Roles: classViews, Scope: ScopeRequest},
	metricsv1.MetricsService_ListClassroomSnapshots_FullMethodName:  {Roles: classViews, Scope: ScopeRequest},
	metricsv1.MetricsService_ListClassroomStudents_FullMethodName:   {Roles: classViews, Scope: ScopeRequest},
	metricsv1.MetricsService_GetDetectionSettings_FullMethodName:    {Roles: classViews, Scope: ScopeRequest},
	metricsv1.MetricsService_UpdateDetectionSettings_FullMethodName: {Roles: teachers, Scope: ScopeRequest, Audit: true},

	// gaia.dashboard.v1.DashboardService
	dashboardv1.DashboardService_SubscribeAlerts_FullMethodName:       {Roles: teachers, Scope: ScopeRequest, Handler: "no classroom_ids means the teacher's assigned classrooms"},
	dashboardv1.DashboardService_ListAlerts_FullMethodName:            {Roles: teachers, Scope: ScopeRequest, Handler: "no classroom_ids means the teacher's assigned classrooms"},
	dashboardv1.DashboardService_AcknowledgeAlert_FullMethodName:      {Roles: teachers, Scope: ScopeRequest, Handler: "the alert's classroom (RequireClassroom)"},
	dashboardv1.DashboardService_ResolveAlert_FullMethodName:          {Roles: teachers, Scope: ScopeRequest, Handler: "the alert's classroom (RequireClassroom)"},
	dashboardv1.DashboardService_RecordIntervention_FullMethodName:    {Roles: teachers, Scope: ScopeRequest, Handler: "the alert's classroom (RequireClassroom)"},
	dashboardv1.DashboardService_AssignClassroom_FullMethodName:       {Roles: adminOnly, Scope: ScopeNone, Audit: true},
	dashboardv1.DashboardService_UnassignClassroom_FullMethodName:     {Roles: adminOnly, Scope: ScopeNone, Audit: true},
	dashboardv1.DashboardService_ListTeacherClassrooms_FullMethodName: {Roles: []Role{RoleAdmin, RoleTeacher, RoleService}, Scope: ScopeRequest},
	dashboardv1.DashboardService_GetClassroomOverview_FullMethodName:  {Roles: teachers, Scope: ScopeRequest},
}

// Lookup returns the policy of a full method name ("/pkg.Service/Method").
func Lookup(fullMethod string) (Policy, bool) {
	p, ok := policies[fullMethod]
	return p, ok
}

// MethodPolicy is one row of the table, for generators (the OpenAPI
// security requirements) and documentation.
type MethodPolicy struct {
	FullMethod string
	Policy
}

// Table returns the whole policy table sorted by method name. The slices are
// copies; changing them changes nothing.
func Table() []MethodPolicy {
	out := make([]MethodPolicy, 0, len(policies))
	for m, p := range policies {
		p.Roles = slices.Clone(p.Roles)
		out = append(out, MethodPolicy{FullMethod: m, Policy: p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FullMethod < out[j].FullMethod })
	return out
}
