package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
)

// Human output of the coordinator commands: aligned columns, times in RFC
// 3339, durations rounded, enum values by their short lower-case names (the
// value formatters all commands share are in render_format.go).

func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0) }

func renderClusterStatus(w io.Writer, st *coordinatorv1.GetClusterStatusResponse) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "leader:\t%s\n", formatLeader(st.GetLeader()))
	fmt.Fprintf(tw, "term:\t%d\n", st.GetTerm())
	fmt.Fprintf(tw, "commit index:\t%d\n", st.GetCommitIndex())
	fmt.Fprintf(tw, "applied index:\t%d\n", st.GetAppliedIndex())
	fmt.Fprintf(tw, "last log index:\t%d\n", st.GetLastLogIndex())
	fmt.Fprintf(tw, "last snapshot:\t%s\n", formatSnapshot(st.GetLastSnapshot()))
	fmt.Fprintf(tw, "sessions:\t%d\n", st.GetSessions())
	fmt.Fprintf(tw, "locks:\t%d\n", st.GetLocks())
	fmt.Fprintf(tw, "answered by:\t%s\n", orDash(st.GetAnsweredBy()))
	if e := st.GetStorageError(); e != "" {
		// The answering node stands for no election until it can write.
		fmt.Fprintf(tw, "storage:\tcannot write: %s\n", e)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	return renderNodes(w, st.GetNodes())
}

func renderNodes(w io.Writer, nodes []*coordinatorv1.Node) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "NODE\tRAFT ADDRESS\tSUFFRAGE\tSTATE\tLAST CONTACT")
	for _, n := range nodes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n",
			n.GetNodeId(), orDash(n.GetRaftAddress()), enumName(n.GetSuffrage()), enumName(n.GetState()), formatTime(n.GetLastContactAt()))
	}
	return tw.Flush()
}

func formatLeader(l *coordinatorv1.LeaderInfo) string {
	if l.GetNodeId() == "" && l.GetRaftAddress() == "" {
		return "none"
	}
	s := orDash(l.GetNodeId())
	if a := l.GetRaftAddress(); a != "" {
		s += " raft " + a
	}
	if a := l.GetGrpcAddress(); a != "" {
		s += " grpc " + a
	}
	return s
}

func formatSnapshot(s *coordinatorv1.Snapshot) string {
	if s == nil {
		return "none"
	}
	return fmt.Sprintf("%s (index %d, term %d, taken %s, %s)",
		orDash(s.GetId()), s.GetIndex(), s.GetTerm(), formatTime(s.GetTakenAt()), formatBytes(s.GetSizeBytes()))
}

func renderSessions(w io.Writer, sessions []*coordinatorv1.Session) error {
	if len(sessions) == 0 {
		_, err := fmt.Fprintln(w, "no sessions")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tNAME\tTIER\tPROVIDER\tSTATUS\tTASKS\tAVAILABLE\tLAST HEARTBEAT\tACTIVITY")
	for _, s := range sessions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n",
			s.GetSessionId(), s.GetName(), enumName(s.GetTier()), enumName(s.GetProvider()), enumName(s.GetStatus()),
			s.GetCurrentTaskCount(), s.GetMaxConcurrentTasks(), yesNo(s.GetAvailable()),
			formatTime(s.GetLastHeartbeatAt()), orDash(oneLine(s.GetActivity())))
	}
	return tw.Flush()
}

func renderSession(w io.Writer, s *coordinatorv1.Session) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "id:\t%s\n", s.GetSessionId())
	fmt.Fprintf(tw, "name:\t%s\n", s.GetName())
	fmt.Fprintf(tw, "tier:\t%s\n", enumName(s.GetTier()))
	fmt.Fprintf(tw, "provider:\t%s\n", enumName(s.GetProvider()))
	fmt.Fprintf(tw, "status:\t%s\n", enumName(s.GetStatus()))
	fmt.Fprintf(tw, "active:\t%s\n", yesNo(s.GetActive()))
	fmt.Fprintf(tw, "healthy:\t%s (%d consecutive failures)\n", yesNo(s.GetHealthy()), s.GetConsecutiveFailures())
	fmt.Fprintf(tw, "available:\t%s\n", yesNo(s.GetAvailable()))
	fmt.Fprintf(tw, "tasks:\t%d of %d\n", s.GetCurrentTaskCount(), s.GetMaxConcurrentTasks())
	fmt.Fprintf(tw, "activity:\t%s\n", orDash(oneLine(s.GetActivity())))
	fmt.Fprintf(tw, "labels:\t%s\n", formatLabels(s.GetLabels()))
	fmt.Fprintf(tw, "time windows:\t%s\n", formatTimeWindows(s.GetTimeWindows()))
	fmt.Fprintf(tw, "registered at:\t%s (index %d)\n", formatTime(s.GetRegisteredAt()), s.GetRegisteredIndex())
	fmt.Fprintf(tw, "last heartbeat:\t%s\n", formatTime(s.GetLastHeartbeatAt()))
	fmt.Fprintf(tw, "lease expires:\t%s\n", formatTime(s.GetLeaseExpiresAt()))
	fmt.Fprintf(tw, "status changed:\t%s\n", formatTime(s.GetStatusChangedAt()))
	return tw.Flush()
}

func renderLocks(w io.Writer, locks []*coordinatorv1.Lock) error {
	if len(locks) == 0 {
		_, err := fmt.Fprintln(w, "no locks")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "KEY\tOWNER\tOWNER NAME\tFENCING TOKEN\tACQUIRED\tEXPIRES\tTTL\tWAITERS")
	for _, l := range locks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%d\n",
			l.GetKey(), l.GetOwnerSessionId(), orDash(l.GetOwnerSessionName()), l.GetFencingToken(),
			formatTime(l.GetAcquiredAt()), formatTime(l.GetExpiresAt()), formatDuration(l.GetTtl()), l.GetWaiters())
	}
	return tw.Flush()
}

func renderLock(w io.Writer, l *coordinatorv1.Lock) error {
	tw := newTable(w)
	fmt.Fprintf(tw, "key:\t%s\n", l.GetKey())
	fmt.Fprintf(tw, "owner:\t%s (%s)\n", l.GetOwnerSessionId(), orDash(l.GetOwnerSessionName()))
	fmt.Fprintf(tw, "fencing token:\t%d\n", l.GetFencingToken())
	fmt.Fprintf(tw, "acquired at:\t%s\n", formatTime(l.GetAcquiredAt()))
	fmt.Fprintf(tw, "expires at:\t%s\n", formatTime(l.GetExpiresAt()))
	fmt.Fprintf(tw, "ttl:\t%s\n", formatDuration(l.GetTtl()))
	fmt.Fprintf(tw, "waiters:\t%d\n", l.GetWaiters())
	return tw.Flush()
}
