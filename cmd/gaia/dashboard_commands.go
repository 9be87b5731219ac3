package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
)

// Where the teacher and alerts commands look for the dashboard when not told.
const (
	defaultDashboardAddr = "127.0.0.1:7004"
	dashboardAddrEnv     = "DASHBOARD_ADDR"
)

// addDashboardCommands adds the teacher and alerts commands.
func addDashboardCommands(root *cobra.Command) {
	root.AddCommand(newTeacherCommand(), newAlertsCommand())
}

// dashboardFlags and dashboardClient are the dashboard commands' connection
// flags and client (see serviceFlags).
type (
	dashboardFlags  = serviceFlags[dashboardv1.DashboardServiceClient]
	dashboardClient = serviceClient[dashboardv1.DashboardServiceClient]
)

func newDashboardGroup(use, short string) (*cobra.Command, *dashboardFlags) {
	return newServiceGroup(use, short, addrFlag{flag: "dashboard", env: dashboardAddrEnv, def: defaultDashboardAddr},
		"dashboard gRPC address, host:port", "the dashboard", dashboardv1.NewDashboardServiceClient)
}

func newTeacherCommand() *cobra.Command {
	cmd, f := newDashboardGroup("teacher", "Assign classrooms to teachers")
	var name string
	assign := newAssignmentCommand(f, "assign --teacher T --classroom C [--name N]",
		"Give a teacher a classroom (again: renames it); live subscriptions see it at once", "assigned to",
		func(ctx context.Context, c *dashboardClient, teacher, classroom string) (proto.Message, error) {
			return c.api.AssignClassroom(ctx, &dashboardv1.AssignClassroomRequest{TeacherId: teacher, ClassroomId: classroom, DisplayName: name})
		})
	assign.Flags().StringVar(&name, "name", "", `a name for people, such as "Year 7 maths, room 12"`)
	unassign := newAssignmentCommand(f, "unassign --teacher T --classroom C", "Take a classroom from a teacher", "unassigned from",
		func(ctx context.Context, c *dashboardClient, teacher, classroom string) (proto.Message, error) {
			return c.api.UnassignClassroom(ctx, &dashboardv1.UnassignClassroomRequest{TeacherId: teacher, ClassroomId: classroom})
		})

	var teacher string
	classrooms := &cobra.Command{
		Use:   "classrooms --teacher T",
		Short: "List a teacher's classrooms",
		Args:  wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "teacher"); err != nil {
				return err
			}
			return f.call(cmd, func(ctx context.Context, c *dashboardClient) error {
				resp, err := c.api.ListTeacherClassrooms(ctx, &dashboardv1.ListTeacherClassroomsRequest{TeacherId: teacher})
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error {
					if !resp.GetAlertsEnabled() {
						fmt.Fprintln(w, "note: alerts are turned off on this dashboard (TEACHER_DASHBOARD_ENABLED=false)")
					}
					if len(resp.GetAssignments()) == 0 {
						_, err := fmt.Fprintf(w, "no classrooms assigned to %s\n", teacher)
						return err
					}
					tw := newTable(w)
					fmt.Fprintln(tw, "CLASSROOM\tNAME\tASSIGNED AT")
					for _, a := range resp.GetAssignments() {
						fmt.Fprintf(tw, "%s\t%s\t%s\n", a.GetClassroomId(), orDash(oneLine(a.GetDisplayName())), formatTime(a.GetAssignedAt()))
					}
					return tw.Flush()
				})
			})
		},
	}
	classrooms.Flags().StringVar(&teacher, "teacher", "", "the teacher's id")
	cmd.AddCommand(assign, unassign, classrooms)
	return cmd
}

func severityFlag(v string) (metricsv1.Severity, error) {
	if v == "" {
		return 0, nil
	}
	n, err := parseEnum("min-severity", v, metricsv1.Severity(0).Descriptor())
	return metricsv1.Severity(n), err
}

func alertIDArg(arg string) (uint64, error) {
	id, err := strconv.ParseUint(arg, 10, 64)
	if err != nil || id == 0 {
		return 0, usageError{fmt.Errorf("invalid alert id %q: want a positive number", arg)}
	}
	return id, nil
}

// newAssignmentCommand is assign or unassign: both take --teacher and
// --classroom, make one call and confirm it in a line ("classroom C <done> T").
func newAssignmentCommand(f *dashboardFlags, use, short, done string,
	rpc func(ctx context.Context, c *dashboardClient, teacher, classroom string) (proto.Message, error),
) *cobra.Command {
	var teacher, classroom string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "teacher", "classroom"); err != nil {
				return err
			}
			return f.call(cmd, func(ctx context.Context, c *dashboardClient) error {
				resp, err := rpc(ctx, c, teacher, classroom)
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "classroom %s %s %s\n", classroom, done, teacher)
					return err
				})
			})
		},
	}
	cmd.Flags().StringVar(&teacher, "teacher", "", "the teacher's id")
	cmd.Flags().StringVar(&classroom, "classroom", "", "the classroom's id")
	return cmd
}

func newAlertsCommand() *cobra.Command {
	cmd, f := newDashboardGroup("alerts", "List, watch and act on teachers' alerts")
	cmd.AddCommand(newAlertsListCommand(f), newAlertsWatchCommand(f), newAlertsAckCommand(f), newAlertsResolveCommand(f), newAlertsInterveneCommand(f))
	return cmd
}

func newAlertsListCommand(f *dashboardFlags) *cobra.Command {
	var req dashboardv1.ListAlertsRequest
	var states []string
	var severity string
	var limit int
	cmd := &cobra.Command{
		Use:   "list --teacher T [--classroom C]... [--state open|acknowledged|resolved]... [--min-severity S] [--student S] [--limit N]",
		Short: "List a teacher's alerts, newest first",
		Args:  wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "teacher"); err != nil {
				return err
			}
			if err := checkLimit(limit); err != nil {
				return err
			}
			var err error
			if req.MinSeverity, err = severityFlag(severity); err != nil {
				return err
			}
			for _, s := range states {
				n, err := parseEnum("state", s, dashboardv1.AlertState(0).Descriptor())
				if err != nil {
					return err
				}
				req.States = append(req.States, dashboardv1.AlertState(n))
			}
			return f.call(cmd, func(ctx context.Context, c *dashboardClient) error {
				alerts, next, err := listPages(ctx, limit, func(ctx context.Context, size int32, token string) ([]*dashboardv1.Alert, string, error) {
					req.PageSize, req.PageToken = size, token
					resp, err := c.api.ListAlerts(ctx, &req)
					return resp.GetAlerts(), resp.GetNextPageToken(), err
				})
				if err != nil {
					return err
				}
				resp := &dashboardv1.ListAlertsResponse{Alerts: alerts, NextPageToken: next}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error { return renderAlerts(w, alerts) })
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.TeacherId, "teacher", "", "the teacher's id")
	fl.StringSliceVar(&req.ClassroomIds, "classroom", nil, "only these of the teacher's classrooms (repeatable; default all)")
	fl.StringSliceVar(&states, "state", nil, "only alerts in these states (repeatable)")
	fl.StringVar(&severity, "min-severity", "", "only alerts at least this severe: info, warning, high, critical")
	fl.StringVar(&req.StudentId, "student", "", "only this student's alerts")
	fl.IntVar(&limit, "limit", 100, "at most this many alerts (0: all)")
	return cmd
}

func renderAlerts(w io.Writer, alerts []*dashboardv1.Alert) error {
	if len(alerts) == 0 {
		_, err := fmt.Fprintln(w, "no alerts")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "ID\tCREATED\tSEVERITY\tSTATE\tCLASSROOM\tSTUDENT\tINDICATOR\tITEM\tREASONS")
	for _, a := range alerts {
		fmt.Fprintln(tw, alertRow(a))
	}
	return tw.Flush()
}

func alertRow(a *dashboardv1.Alert) string {
	return strings.Join([]string{
		strconv.FormatUint(a.GetAlertId(), 10), formatTime(a.GetCreatedAt()), enumName(a.GetSeverity()),
		enumName(a.GetState()), a.GetClassroomId(), orDash(a.GetStudentId()),
		enumName(a.GetIndicator()), orDash(a.GetItemId()), oneLine(strings.Join(a.GetReasons(), "; ")),
	}, "\t")
}

func newAlertsAckCommand(f *dashboardFlags) *cobra.Command {
	var teacher string
	cmd := &cobra.Command{
		Use:   "ack ALERT_ID --teacher T",
		Short: "Acknowledge an alert",
		Args:  wrapArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := alertIDArg(args[0])
			if err != nil {
				return err
			}
			if err := requireFlags(cmd, "teacher"); err != nil {
				return err
			}
			return f.call(cmd, func(ctx context.Context, c *dashboardClient) error {
				resp, err := c.api.AcknowledgeAlert(ctx, &dashboardv1.AcknowledgeAlertRequest{AlertId: id, TeacherId: teacher})
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error { return renderAlerts(w, []*dashboardv1.Alert{resp.GetAlert()}) })
			})
		},
	}
	cmd.Flags().StringVar(&teacher, "teacher", "", "the teacher acting")
	return cmd
}

func newAlertsResolveCommand(f *dashboardFlags) *cobra.Command {
	var teacher, outcome, notes string
	cmd := &cobra.Command{
		Use:   "resolve ALERT_ID --teacher T --outcome helped|false_positive|no_action_needed|escalated [--notes N]",
		Short: "Resolve an alert with an outcome",
		Args:  wrapArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := alertIDArg(args[0])
			if err != nil {
				return err
			}
			if err := requireFlags(cmd, "teacher", "outcome"); err != nil {
				return err
			}
			o, err := parseEnum("outcome", outcome, dashboardv1.AlertOutcome(0).Descriptor())
			if err != nil {
				return err
			}
			return f.call(cmd, func(ctx context.Context, c *dashboardClient) error {
				resp, err := c.api.ResolveAlert(ctx, &dashboardv1.ResolveAlertRequest{AlertId: id, TeacherId: teacher, Outcome: dashboardv1.AlertOutcome(o), Notes: notes})
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error { return renderAlerts(w, []*dashboardv1.Alert{resp.GetAlert()}) })
			})
		},
	}
	cmd.Flags().StringVar(&teacher, "teacher", "", "the teacher acting")
	cmd.Flags().StringVar(&outcome, "outcome", "", "helped, false_positive, no_action_needed or escalated")
	cmd.Flags().StringVar(&notes, "notes", "", "what happened (up to 4 KiB)")
	return cmd
}

func newAlertsInterveneCommand(f *dashboardFlags) *cobra.Command {
	var teacher, action, notes string
	cmd := &cobra.Command{
		Use:   "intervene ALERT_ID --teacher T --action checked_in|gave_hint|changed_item|gave_break|paired_with_peer|contacted_guardian|other [--notes N]",
		Short: "Record what a teacher did about an alert",
		Args:  wrapArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := alertIDArg(args[0])
			if err != nil {
				return err
			}
			if err := requireFlags(cmd, "teacher", "action"); err != nil {
				return err
			}
			a, err := parseEnum("action", action, dashboardv1.InterventionAction(0).Descriptor())
			if err != nil {
				return err
			}
			return f.call(cmd, func(ctx context.Context, c *dashboardClient) error {
				resp, err := c.api.RecordIntervention(ctx, &dashboardv1.RecordInterventionRequest{AlertId: id, TeacherId: teacher,
					Action: dashboardv1.InterventionAction(a), Notes: notes})
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error {
					_, err := fmt.Fprintf(w, "intervention %s recorded on alert %d\n", resp.GetIntervention().GetInterventionId(), id)
					return err
				})
			})
		},
	}
	cmd.Flags().StringVar(&teacher, "teacher", "", "the teacher acting")
	cmd.Flags().StringVar(&action, "action", "", "what the teacher did")
	cmd.Flags().StringVar(&notes, "notes", "", "details (up to 4 KiB)")
	return cmd
}

func newAlertsWatchCommand(f *dashboardFlags) *cobra.Command {
	var req dashboardv1.SubscribeAlertsRequest
	var severity string
	cmd := &cobra.Command{
		Use:   "watch --teacher T [--classroom C]... [--after ID] [--min-severity S]",
		Short: "Print a teacher's alerts live, one line each, until Ctrl-C",
		Long: `Subscribes to the teacher's alerts: first the unresolved ones (or, with --after,
every alert after that id), then new ones as they are raised. When the stream
breaks (the dashboard restarts, the client fell behind) it resubscribes after
the last alert printed, so nothing is missed or printed twice. --json prints
one JSON object per alert.`,
		Args: wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requireFlags(cmd, "teacher"); err != nil {
				return err
			}
			var err error
			if req.MinSeverity, err = severityFlag(severity); err != nil {
				return err
			}
			c, err := f.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return watchAlerts(ctx, c.api, &req, f.json, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.TeacherId, "teacher", "", "the teacher's id")
	fl.StringSliceVar(&req.ClassroomIds, "classroom", nil, "only these of the teacher's classrooms (repeatable; default all, including ones assigned later)")
	fl.Uint64Var(&req.AfterAlertId, "after", 0, "start after this alert id (default: the unresolved alerts)")
	fl.StringVar(&severity, "min-severity", "", "only alerts at least this severe: info, warning, high, critical")
	return cmd
}

// watchAlerts follows a subscription, resubscribing after the last alert
// printed whenever the stream breaks for a reason a retry can cure.
func watchAlerts(ctx context.Context, api dashboardv1.DashboardServiceClient, req *dashboardv1.SubscribeAlertsRequest, asJSON bool, w, errw io.Writer) error {
	backoff := 250 * time.Millisecond
	header := !asJSON
	for {
		err := func() error {
			stream, err := api.SubscribeAlerts(ctx, req)
			if err != nil {
				return err
			}
			for {
				m, err := stream.Recv()
				if err != nil {
					return err
				}
				backoff = 250 * time.Millisecond
				a := m.GetAlert()
				if a == nil {
					continue // a heartbeat
				}
				if asJSON {
					if err := writeProtoJSON(w, a); err != nil {
						return err
					}
				} else {
					if header {
						fmt.Fprintln(w, "ID\tCREATED\tSEVERITY\tSTATE\tCLASSROOM\tSTUDENT\tINDICATOR\tITEM\tREASONS")
						header = false
					}
					fmt.Fprintln(w, alertRow(a))
				}
				req.AfterAlertId = a.GetAlertId()
			}
		}()
		if ctx.Err() != nil {
			return nil
		}
		switch status.Code(err) {
		case codes.Unavailable, codes.ResourceExhausted, codes.Internal, codes.Unknown:
		default:
			return asRPCError(err)
		}
		if after := resumeAfter(err); after > req.AfterAlertId {
			req.AfterAlertId = after // a heartbeat-only stream: nothing printed, nothing missed
		}
		fmt.Fprintf(errw, "alert stream interrupted (%s); resubscribing after alert %d\n", status.Convert(err).Message(), req.AfterAlertId)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// resumeAfter reads the after_alert_id a server put in an ended stream's
// status, 0 when it did not.
func resumeAfter(err error) uint64 {
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			if n, err := strconv.ParseUint(info.GetMetadata()["after_alert_id"], 10, 64); err == nil {
				return n
			}
		}
	}
	return 0
}
