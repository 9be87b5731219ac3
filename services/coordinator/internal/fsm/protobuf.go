package fsm

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/gaia-platform/gaia/internal/window"
	raftlogv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/raftlog/v1"
	"github.com/gaia-platform/gaia/services/coordinator/internal/state"
)

// Commands as protobuf (proto/gaia/coordinator/raftlog/v1): the conversions
// between the Go commands the state machine applies and the messages the log
// stores. Every field of a command is carried, so that a command decodes to
// what was encoded, except that times come back in UTC (the instant is kept,
// the zone offset JSON kept is not: nothing in the state machine reads it).

// marshalProto is deterministic so that the same command always makes the
// same bytes (labels are a map); the size is computed once, by the caller.
var marshalProto = proto.MarshalOptions{Deterministic: true, UseCachedSize: true}

// commandMessage converts a command to its message.
func commandMessage(cmd any) (proto.Message, error) {
	switch c := cmd.(type) {
	case RegisterSession:
		return &raftlogv1.RegisterSession{At: timeProto(c.At), Session: sessionProto(&c.Session)}, nil
	case Transition:
		return &raftlogv1.Transition{At: timeProto(c.At), SessionId: c.Transition.SessionID, To: string(c.Transition.To), LastBeat: timeProto(c.Transition.LastBeat)}, nil
	case AcquireLock:
		return &raftlogv1.AcquireLock{At: timeProto(c.At), Key: c.Key, SessionId: c.SessionID, TtlNanos: int64(c.TTL)}, nil
	case RenewLock:
		return &raftlogv1.RenewLock{At: timeProto(c.At), Key: c.Key, SessionId: c.SessionID, Fencing: c.Fencing, TtlNanos: int64(c.TTL)}, nil
	case ReleaseLock:
		return &raftlogv1.ReleaseLock{At: timeProto(c.At), Key: c.Key, SessionId: c.SessionID, Fencing: c.Fencing}, nil
	case ExpireLocks:
		m := &raftlogv1.ExpireLocks{At: timeProto(c.At)}
		if len(c.Locks) > 0 {
			m.Locks = make([]*raftlogv1.LockGrant, len(c.Locks))
			grants := make([]raftlogv1.LockGrant, len(c.Locks))
			for i, g := range c.Locks {
				grants[i].Key, grants[i].Fencing = g.Key, g.Fencing
				m.Locks[i] = &grants[i]
			}
		}
		return m, nil
	case SetNode:
		return &raftlogv1.SetNode{Node: &raftlogv1.Node{Id: c.Node.ID, GrpcAddress: c.Node.GRPCAddress}}, nil
	case RemoveNode:
		return &raftlogv1.RemoveNode{Id: c.ID}, nil
	case PurgeSessions:
		return &raftlogv1.PurgeSessions{At: timeProto(c.At), Before: timeProto(c.Before)}, nil
	case IssueCredential:
		return &raftlogv1.IssueCredential{Credential: credentialProto(&c.Credential)}, nil
	case RevokeCredential:
		return &raftlogv1.RevokeCredential{At: timeProto(c.At), Id: c.ID, By: c.By, ExpiresAt: timeProto(c.ExpiresAt)}, nil
	}
	return nil, fmt.Errorf("no protobuf form for %T", cmd)
}

// decodeProto decodes a command's message into the command v points to.
func decodeProto(body []byte, v any) error {
	switch c := v.(type) {
	case *RegisterSession:
		var m raftlogv1.RegisterSession
		if err := proto.Unmarshal(body, &m); err != nil {
			return err
		}
		c.At = timeFromProto(m.At)
		sessionFromProto(&c.Session, m.Session)
	case *Transition:
		var m raftlogv1.Transition
		if err := proto.Unmarshal(body, &m); err != nil {
			return err
		}
		*c = Transition{At: timeFromProto(m.At), Transition: state.Transition{SessionID: m.SessionId, To: state.Status(m.To), LastBeat: timeFromProto(m.LastBeat)}}
	case *AcquireLock:
		var m raftlogv1.AcquireLock
		if err := proto.Unmarshal(body, &m); err != nil {
			return err
		}
		*c = AcquireLock{At: timeFromProto(m.At), Key: m.Key, SessionID: m.SessionId, TTL: time.Duration(m.TtlNanos)}
	case *RenewLock:
		var m raftlogv1.RenewLock
		if err := proto.Unmarshal(body, &m); err != nil {
			return err
		}
		*c = RenewLock{At: timeFromProto(m.At), Key: m.Key, SessionID: m.SessionId, Fencing: m.Fencing, TTL: time.Duration(m.TtlNanos)}
	case *ReleaseLock:
		var m raftlogv1.ReleaseLock
		if err := proto.Unmarshal(body, &m); err != nil {
			return err
		}
		*c = ReleaseLock{At: timeFromProto(m.At), Key: m.Key, SessionID: m.SessionId, Fencing: m.Fencing}
	case *ExpireLocks:
		var m raftlogv1.ExpireLocks
		if err := proto.Unmarshal(body, &m); err != nil {
			return err
		}
		*c = ExpireLocks{At: timeFromProto(m.At)}
		if len(m.Locks) > 0 {
			c.Locks = make([]LockGrant, len(m.Locks))
			for i, g := range m.Locks {
				c.Locks[i] = LockGrant{Key: g.GetKey(), Fencing: g.GetFencing()}
			}
		}
	case *SetNode:
		var m raftlogv1.SetNode
		if err := proto.Unmarshal(body, &m); err != nil {
			return err
		}
		*c = SetNode{Node: state.Node{ID: m.GetNode().GetId(), GRPCAddress: m.GetNode().GetGrpcAddress()}}
	case *RemoveNode:
		var m raftlogv1.RemoveNode
		if err := proto.Unmarshal(body, &m); err != nil {
			return err
		}
		*c = RemoveNode{ID: m.Id}
	case *PurgeSessions:
		var m raftlogv1.PurgeSessions
		if err := proto.Unmarshal(body, &m); err != nil {
			return err
		}
		*c = PurgeSessions{At: timeFromProto(m.At), Before: timeFromProto(m.Before)}
	case *IssueCredential:
		var m raftlogv1.IssueCredential
		if err := proto.Unmarshal(body, &m); err != nil {
			return err
		}
		credentialFromProto(&c.Credential, m.Credential)
	case *RevokeCredential:
		var m raftlogv1.RevokeCredential
		if err := proto.Unmarshal(body, &m); err != nil {
			return err
		}
		*c = RevokeCredential{At: timeFromProto(m.At), ID: m.Id, By: m.By, ExpiresAt: timeFromProto(m.ExpiresAt)}
	default:
		return fmt.Errorf("no protobuf form for %T", v)
	}
	return nil
}

// timeProto is nil for the zero time, which a Timestamp can hold but which
// would cost twelve bytes in every entry that leaves a time unset.
func timeProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return &timestamppb.Timestamp{Seconds: t.Unix(), Nanos: int32(t.Nanosecond())}
}

func timeFromProto(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return time.Unix(ts.Seconds, int64(ts.Nanos)).UTC()
}

func sessionProto(s *state.Session) *raftlogv1.Session {
	m := &raftlogv1.Session{
		Id: s.ID, Name: s.Name, Tier: string(s.Tier), Provider: string(s.Provider),
		MaxConcurrentTasks: int64(s.MaxConcurrentTasks), Labels: s.Labels, TokenHash: s.TokenHash,
		Status: string(s.Status), ConsecutiveFailures: int64(s.ConsecutiveFailures),
		RegisteredAt: timeProto(s.RegisteredAt), RegisteredIndex: s.RegisteredIndex,
		StatusChangedAt: timeProto(s.StatusChangedAt), LastHeartbeatAt: timeProto(s.LastHeartbeatAt),
	}
	if len(s.TimeWindows) > 0 {
		m.TimeWindows = make([]*raftlogv1.TimeWindow, len(s.TimeWindows))
		for i, w := range s.TimeWindows {
			pw := &raftlogv1.TimeWindow{StartMinute: int64(w.StartMinute), EndMinute: int64(w.EndMinute), TimeZone: w.TimeZone}
			if len(w.Days) > 0 {
				pw.Days = make([]int64, len(w.Days))
				for j, d := range w.Days {
					pw.Days[j] = int64(d)
				}
			}
			m.TimeWindows[i] = pw
		}
	}
	return m
}

// sessionFromProto fills s from m; a nil m leaves s empty.
func sessionFromProto(s *state.Session, m *raftlogv1.Session) {
	*s = state.Session{}
	if m == nil {
		return
	}
	*s = state.Session{
		ID: m.Id, Name: m.Name, Tier: state.Tier(m.Tier), Provider: state.Provider(m.Provider),
		MaxConcurrentTasks: int(m.MaxConcurrentTasks), Labels: m.Labels, TokenHash: m.TokenHash,
		Status: state.Status(m.Status), ConsecutiveFailures: int(m.ConsecutiveFailures),
		RegisteredAt: timeFromProto(m.RegisteredAt), RegisteredIndex: m.RegisteredIndex,
		StatusChangedAt: timeFromProto(m.StatusChangedAt), LastHeartbeatAt: timeFromProto(m.LastHeartbeatAt),
	}
	if len(m.TimeWindows) > 0 {
		s.TimeWindows = make([]state.TimeWindow, len(m.TimeWindows))
		for i, pw := range m.TimeWindows {
			w := &s.TimeWindows[i]
			w.StartMinute, w.EndMinute, w.TimeZone = int(pw.GetStartMinute()), int(pw.GetEndMinute()), pw.GetTimeZone()
			if days := pw.GetDays(); len(days) > 0 {
				w.Days = make([]window.Weekday, len(days))
				for j, d := range days {
					w.Days[j] = window.Weekday(d)
				}
			}
		}
	}
}

func credentialProto(c *state.Credential) *raftlogv1.Credential {
	return &raftlogv1.Credential{
		Id: c.ID, Role: c.Role, Name: c.Name, TeacherId: c.TeacherID, AppId: c.AppID,
		Classrooms: c.Classrooms, Projects: c.Projects, Service: c.Service, KeyId: c.KeyID,
		IssuedAt: timeProto(c.IssuedAt), ExpiresAt: timeProto(c.ExpiresAt), IssuedBy: c.IssuedBy,
		RevokedAt: timeProto(c.RevokedAt), RevokedBy: c.RevokedBy,
	}
}

// credentialFromProto fills c from m; a nil m leaves c empty.
func credentialFromProto(c *state.Credential, m *raftlogv1.Credential) {
	*c = state.Credential{}
	if m == nil {
		return
	}
	*c = state.Credential{
		ID: m.Id, Role: m.Role, Name: m.Name, TeacherID: m.TeacherId, AppID: m.AppId,
		Classrooms: m.Classrooms, Projects: m.Projects, Service: m.Service, KeyID: m.KeyId,
		IssuedAt: timeFromProto(m.IssuedAt), ExpiresAt: timeFromProto(m.ExpiresAt), IssuedBy: m.IssuedBy,
		RevokedAt: timeFromProto(m.RevokedAt), RevokedBy: m.RevokedBy,
	}
}
