package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
)

// addDetectCommands adds `gaia detect watch` and `gaia detect settings`.
func addDetectCommands(root *cobra.Command) {
	cmd, f := newMetricsGroup("detect", "Watch frustration detection and change a classroom's detection settings")
	settings := newCommandGroup("settings", "Read or change a classroom's detection settings")
	settings.AddCommand(newDetectSettingsGetCommand(f), newDetectSettingsSetCommand(f))
	cmd.AddCommand(newDetectWatchCommand(f), settings)
	root.AddCommand(cmd)
}

func newDetectWatchCommand(f *metricsFlags) *cobra.Command {
	var classrooms []string
	var after uint64
	var minSeverity string
	cmd := &cobra.Command{
		Use:   "watch",
		Short: "Print frustration events as they are detected",
		Long: `Streams frustration events (stored ones after --after first, then new ones
as the detector finds them), one readable line each, or one JSON object per
line with --json. It reconnects after a lost connection, resuming after the
last event printed, so nothing is missed or printed twice. Ctrl-C ends it.`,
		Args: wrapArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &metricsv1.WatchFrustrationEventsRequest{ClassroomIds: classrooms, AfterId: after}
			if minSeverity != "" {
				n, err := parseEnum("min-severity", minSeverity, metricsv1.Severity(0).Descriptor())
				if err != nil {
					return err
				}
				req.MinSeverity = metricsv1.Severity(n)
			}
			c, err := f.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			return watchDetections(cmd.Context(), c.api, req, f.json, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringSliceVar(&classrooms, "classroom", nil, "only this classroom (repeat or comma-separate for several)")
	cmd.Flags().Uint64Var(&after, "after", 0, "start after this frustration event id (default: from the oldest retained)")
	cmd.Flags().StringVar(&minSeverity, "min-severity", "", "only events at least this severe: info, warning, high, critical")
	return cmd
}

// watchDetections prints events until ctx ends, reconnecting after errors
// the server may recover from.
func watchDetections(ctx context.Context, cli metricsv1.MetricsServiceClient, req *metricsv1.WatchFrustrationEventsRequest, asJSON bool, w io.Writer) error {
	backoff := 100 * time.Millisecond
	for {
		stream, err := cli.WatchFrustrationEvents(ctx, req)
		for err == nil {
			var resp *metricsv1.WatchFrustrationEventsResponse
			if resp, err = stream.Recv(); err != nil {
				break
			}
			backoff = 100 * time.Millisecond
			e := resp.GetEvent()
			if asJSON {
				err = writeProtoJSON(w, e)
			} else {
				_, err = fmt.Fprintln(w, detectionLine(e))
			}
			req.AfterId = e.GetEventId()
		}
		if ctx.Err() != nil {
			return nil
		}
		switch status.Code(err) {
		case codes.Unavailable, codes.Internal, codes.Unknown, codes.DeadlineExceeded:
		default:
			if errors.Is(err, io.EOF) {
				break
			}
			return asRPCError(err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// detectionLine is one event as a teacher reads it:
// 09:41:07  #12  warning   rage_click      class-a  s1  item-3   3 clicks within 0.8 s at the same spot
func detectionLine(e *metricsv1.FrustrationEvent) string {
	who := e.GetStudentId()
	if who == "" {
		who = "(classroom)"
	}
	item := e.GetItemId()
	if item == "" {
		item = "-"
	}
	return fmt.Sprintf("%s  #%-5d %-8s  %-17s %s  %s  %s  %s",
		e.GetTriggeredAt().AsTime().Local().Format("15:04:05"), e.GetEventId(), enumName(e.GetSeverity()), enumName(e.GetIndicator()),
		e.GetClassroomId(), who, item, strings.Join(e.GetReasons(), "; "))
}

func newDetectSettingsGetCommand(f *metricsFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "get CLASSROOM",
		Short: "Show a classroom's detection settings (the effective thresholds)",
		Args:  wrapArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return callService(cmd, &f.rpcFlags, 0, f.connect, func(ctx context.Context, c *metricsClient) error {
				resp, err := c.api.GetDetectionSettings(ctx, &metricsv1.GetDetectionSettingsRequest{ClassroomId: args[0]})
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error {
					return printSettings(w, resp.GetSettings(), resp.GetDefaults())
				})
			})
		},
	}
}

func newDetectSettingsSetCommand(f *metricsFlags) *cobra.Command {
	var sensitivity string
	var thresholds, disable, enable []string
	cmd := &cobra.Command{
		Use:   "set CLASSROOM",
		Short: "Change a classroom's sensitivity, thresholds or disabled indicators",
		Long: `Changes only what the flags name. --threshold takes name=value pairs, such as
idle_timeout=3m or rage_click_min_clicks=4 (durations in Go form: 800ms, 90s,
2m); a value of 0 returns that threshold to the sensitivity preset's. Run
"gaia detect settings get" to see the names and current values.`,
		Example: `  gaia detect settings set class-7 --sensitivity high
  gaia detect settings set class-7 --threshold idle_timeout=3m --threshold rage_click_min_clicks=4
  gaia detect settings set class-7 --disable keystroke_thrash`,
		Args: wrapArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &metricsv1.UpdateDetectionSettingsRequest{
				Settings:   &metricsv1.DetectionSettings{ClassroomId: args[0], Thresholds: &metricsv1.DetectionThresholds{}},
				UpdateMask: &fieldmaskpb.FieldMask{},
			}
			if sensitivity != "" {
				n, err := parseEnum("sensitivity", sensitivity, metricsv1.Sensitivity(0).Descriptor())
				if err != nil {
					return err
				}
				req.Settings.Sensitivity = metricsv1.Sensitivity(n)
				req.UpdateMask.Paths = append(req.UpdateMask.Paths, "sensitivity")
			}
			for _, kv := range thresholds {
				name, err := setThreshold(req.Settings.Thresholds, kv)
				if err != nil {
					return err
				}
				req.UpdateMask.Paths = append(req.UpdateMask.Paths, "thresholds."+name)
			}
			if len(disable) > 0 || len(enable) > 0 {
				// The disabled list is replaced as a whole: read it first.
				if err := callService(cmd, &f.rpcFlags, 0, f.connect, func(ctx context.Context, c *metricsClient) error {
					cur, err := c.api.GetDetectionSettings(ctx, &metricsv1.GetDetectionSettingsRequest{ClassroomId: args[0]})
					if err != nil {
						return err
					}
					list, err := editIndicators(cur.GetSettings().GetDisabledIndicators(), disable, enable)
					req.Settings.DisabledIndicators = list
					return err
				}); err != nil {
					return err
				}
				req.UpdateMask.Paths = append(req.UpdateMask.Paths, "disabled_indicators")
			}
			if len(req.UpdateMask.Paths) == 0 {
				return usageError{errors.New("nothing to change: give --sensitivity, --threshold, --disable or --enable")}
			}
			return callService(cmd, &f.rpcFlags, 0, f.connect, func(ctx context.Context, c *metricsClient) error {
				resp, err := c.api.UpdateDetectionSettings(ctx, req)
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error { return printSettings(w, resp.GetSettings(), false) })
			})
		},
	}
	cmd.Flags().StringVar(&sensitivity, "sensitivity", "", "low, normal or high")
	cmd.Flags().StringArrayVar(&thresholds, "threshold", nil, "name=value (repeatable)")
	cmd.Flags().StringSliceVar(&disable, "disable", nil, "indicators to switch off, such as keystroke_thrash")
	cmd.Flags().StringSliceVar(&enable, "enable", nil, "indicators to switch back on")
	return cmd
}

// setThreshold sets one field of t from "name=value" and returns the name.
func setThreshold(t *metricsv1.DetectionThresholds, kv string) (string, error) {
	name, value, ok := strings.Cut(kv, "=")
	name, value = strings.TrimSpace(name), strings.TrimSpace(value)
	bad := func(want string) error {
		return usageError{fmt.Errorf("invalid value %q for --threshold: want %s", kv, want)}
	}
	if !ok || name == "" {
		return "", bad("name=value, such as idle_timeout=3m")
	}
	fd := t.ProtoReflect().Descriptor().Fields().ByName(protoName(name))
	if fd == nil {
		return "", bad("a threshold name (see gaia detect settings get)")
	}
	m := t.ProtoReflect()
	switch {
	case fd.Message() != nil:
		d, err := time.ParseDuration(value)
		if err != nil {
			return "", bad("a duration for " + name + ", such as 90s")
		}
		m.Set(fd, protoValueOf(durationpb.New(d)))
	case fd.Kind().String() == "int32":
		n, err := strconv.ParseInt(value, 10, 32)
		if err != nil {
			return "", bad("a whole number for " + name)
		}
		m.Set(fd, protoInt32(int32(n)))
	default:
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			return "", bad("a number for " + name)
		}
		m.Set(fd, protoFloat(v))
	}
	return name, nil
}

// editIndicators applies --disable and --enable to the disabled list.
func editIndicators(cur []metricsv1.Indicator, disable, enable []string) ([]metricsv1.Indicator, error) {
	set := map[metricsv1.Indicator]bool{}
	for _, ind := range cur {
		set[ind] = true
	}
	for flag, names := range map[string][]string{"disable": disable, "enable": enable} {
		for _, n := range names {
			v, err := parseEnum(flag, n, metricsv1.Indicator(0).Descriptor())
			if err != nil {
				return nil, err
			}
			set[metricsv1.Indicator(v)] = flag == "disable"
		}
	}
	var out []metricsv1.Indicator
	for i := metricsv1.Indicator(1); i <= metricsv1.Indicator_INDICATOR_CLASSROOM_HOTSPOT; i++ {
		if set[i] {
			out = append(out, i)
		}
	}
	return out, nil
}

func printSettings(w io.Writer, s *metricsv1.DetectionSettings, defaults bool) error {
	tw := tabwriter.NewWriter(w, 0, 2, 2, ' ', 0)
	source := "its own settings"
	if defaults {
		source = "the defaults (no settings of its own)"
	}
	fmt.Fprintf(tw, "classroom\t%s (%s)\n", s.GetClassroomId(), source)
	fmt.Fprintf(tw, "sensitivity\t%s\n", enumName(s.GetSensitivity()))
	var off []string
	for _, ind := range s.GetDisabledIndicators() {
		off = append(off, enumName(ind))
	}
	if len(off) == 0 {
		off = []string{"none"}
	}
	fmt.Fprintf(tw, "disabled\t%s\n", strings.Join(off, ", "))
	explicit := map[string]bool{}
	for _, n := range s.GetOverriddenThresholds() {
		explicit[n] = true
	}
	m := s.GetThresholds().ProtoReflect()
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		v := m.Get(fd)
		var text string
		if fd.Message() != nil {
			d := &durationpb.Duration{Seconds: v.Message().Get(fd.Message().Fields().ByName("seconds")).Int(),
				Nanos: int32(v.Message().Get(fd.Message().Fields().ByName("nanos")).Int())}
			text = d.AsDuration().String()
		} else {
			text = fmt.Sprint(v.Interface())
		}
		note := ""
		if explicit[string(fd.Name())] {
			note = "\t(set for this classroom)"
		}
		fmt.Fprintf(tw, "%s\t%s%s\n", fd.Name(), text, note)
	}
	return tw.Flush()
}
func protoName(s string) protoreflect.Name { return protoreflect.Name(s) }

func protoValueOf(m proto.Message) protoreflect.Value {
	return protoreflect.ValueOfMessage(m.ProtoReflect())
}

func protoInt32(v int32) protoreflect.Value { return protoreflect.ValueOfInt32(v) }

func protoFloat(v float64) protoreflect.Value { return protoreflect.ValueOfFloat64(v) }
