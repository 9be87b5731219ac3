package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
)

// Where the metrics, ratings and classroom commands look for the metrics
// service when not told.
const (
	defaultMetricsAddr = "127.0.0.1:7003"
	metricsAddrEnv     = "METRICS_ADDR"
)

// addMetricsCommands adds the metrics, ratings and classroom commands.
func addMetricsCommands(root *cobra.Command) {
	root.AddCommand(newMetricsCommand(), newRatingsCommand(), newClassroomCommand())
}

// metricsFlags and metricsClient are the metrics commands' connection flags
// and client (see serviceFlags).
type (
	metricsFlags  = serviceFlags[metricsv1.MetricsServiceClient]
	metricsClient = serviceClient[metricsv1.MetricsServiceClient]
)

func newMetricsGroup(use, short string) (*cobra.Command, *metricsFlags) {
	return newServiceGroup(use, short, addrFlag{flag: "metrics", env: metricsAddrEnv, def: defaultMetricsAddr},
		"metrics service gRPC address, host:port", "the metrics service (each request)", metricsv1.NewMetricsServiceClient)
}

func newMetricsCommand() *cobra.Command {
	cmd, f := newMetricsGroup("metrics", "Send usability events to the metrics service")
	cmd.AddCommand(newMetricsSendCommand(f))
	return cmd
}

// sendSummary is what `gaia metrics send` reports.
type sendSummary struct {
	Events     int            `json:"events"`
	Accepted   int            `json:"accepted"`
	Duplicates int            `json:"duplicates"`
	Rejected   []sendRejected `json:"rejected"`
	Requests   int            `json:"requests"`
	Retries    int            `json:"retries"`
}

// sendRejected is one event not stored, by its line in the input.
type sendRejected struct {
	Line    int    `json:"line"`
	EventID string `json:"event_id,omitempty"`
	Field   string `json:"field,omitempty"`
	Reason  string `json:"reason"`
}

func newMetricsSendCommand(f *metricsFlags) *cobra.Command {
	var batchSize, retries int
	c := &cobra.Command{
		Use:   "send [FILE]",
		Short: "Send events from a file of JSON lines (or stdin), in batches",
		Long: `Send usability events, one JSON object a line (the UsabilityEvent of
gaia.metrics.v1 with protobuf field names), from FILE or, without one or
with -, from stdin. kind may be short ("click") or the enum name
("EVENT_KIND_CLICK"). Events go in batches of --batch; a batch that fails
with UNAVAILABLE or a timeout is sent again as it was (event ids make that
safe: what was stored already counts as duplicates). On a terminal a
progress bar shows how far it got (a count of events from stdin); the summary counts accepted, duplicate
and rejected events and lists the rejected ones by line. It exits 1 when
any event was rejected.

  {"event_id":"e1","app_id":"fractions","classroom_id":"room-1","student_id":"s-1","kind":"attempt","item_id":"q1","correct":false,"occurred_at":"2026-12-01T09:00:00Z"}`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkIntRange("batch", batchSize, 1, 5000); err != nil {
				return err
			}
			if err := checkIntRange("retries", retries, 0, 100); err != nil {
				return err
			}
			if f.timeout <= 0 {
				return usageError{fmt.Errorf("--timeout must be positive, got %v", f.timeout)}
			}
			in := &countingReader{r: cmd.InOrStdin()}
			if len(args) == 1 && args[0] != "-" {
				file, err := os.Open(args[0])
				if err != nil {
					return usageError{err}
				}
				defer file.Close()
				in.r = file
				if st, err := file.Stat(); err == nil && st.Mode().IsRegular() {
					in.total = st.Size()
				}
			}
			c, err := f.connect(cmd)
			if err != nil {
				return err
			}
			defer c.Close()
			var progress io.Writer
			if isTerminal(cmd.ErrOrStderr()) && !f.json {
				progress = cmd.ErrOrStderr()
			}
			sum, err := sendEvents(cmd.Context(), c.api, in, batchSize, retries, f.timeout, progress)
			if err != nil {
				return asRPCError(err)
			}
			out := cmd.OutOrStdout()
			if f.json {
				if sum.Rejected == nil {
					sum.Rejected = []sendRejected{}
				}
				if err := writeJSON(out, sum); err != nil {
					return err
				}
			} else {
				printSendSummary(out, sum)
			}
			if len(sum.Rejected) > 0 {
				return fmt.Errorf("%d of %d events were rejected", len(sum.Rejected), sum.Events)
			}
			return nil
		},
	}
	c.Flags().IntVar(&batchSize, "batch", 500, "events per request (1-5000)")
	c.Flags().IntVar(&retries, "retries", 5, "times a batch is sent again after UNAVAILABLE or a timeout")
	return c
}

// sendEvents reads JSON lines from in and sends them in batches.
func sendEvents(ctx context.Context, api metricsv1.MetricsServiceClient, in *countingReader, batchSize, retries int, timeout time.Duration, progress io.Writer) (sendSummary, error) {
	var sum sendSummary
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var batch []*metricsv1.UsabilityEvent
	var lines []int
	line := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		resp, err := sendBatch(ctx, api, batch, retries, timeout, &sum)
		if err != nil {
			if st, ok := status.FromError(err); ok && st.Code() == codes.InvalidArgument && len(batch) > 0 {
				// The whole batch was refused (every event bad, or the batch
				// itself): report each line with the server's words.
				for i, e := range batch {
					sum.Rejected = append(sum.Rejected, sendRejected{Line: lines[i], EventID: e.GetEventId(), Reason: st.Message()})
				}
				batch, lines = batch[:0], lines[:0]
				return nil
			}
			return err
		}
		sum.Accepted += int(resp.Accepted)
		sum.Duplicates += int(resp.Duplicates)
		for _, r := range resp.Rejected {
			rl := 0
			if int(r.Index) < len(lines) {
				rl = lines[r.Index]
			}
			sum.Rejected = append(sum.Rejected, sendRejected{Line: rl, EventID: r.EventId, Field: r.Field, Reason: r.Reason})
		}
		batch, lines = batch[:0], lines[:0]
		if progress != nil {
			fmt.Fprintf(progress, "\r\033[K%s%d events: %d accepted, %d duplicates, %d rejected", in.bar(), sum.Events, sum.Accepted, sum.Duplicates, len(sum.Rejected))
		}
		return nil
	}
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		sum.Events++
		ev, err := parseEventLine(text)
		if err != nil {
			sum.Rejected = append(sum.Rejected, sendRejected{Line: line, Reason: "not a usability event: " + err.Error()})
			continue
		}
		batch = append(batch, ev)
		lines = append(lines, line)
		if len(batch) >= batchSize {
			if err := flush(); err != nil {
				return sum, err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return sum, fmt.Errorf("read line %d: %w", line+1, err)
	}
	err := flush()
	if progress != nil {
		fmt.Fprintln(progress)
	}
	return sum, err
}

// countingReader counts the bytes read, for the progress bar of a file of
// known size.
type countingReader struct {
	r     io.Reader
	read  int64
	total int64 // 0 when unknown (stdin)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read += int64(n)
	return n, err
}

// bar is "[#####---------------]  25.0%  " when the size is known.
func (c *countingReader) bar() string {
	if c.total <= 0 {
		return ""
	}
	f := min(1, float64(c.read)/float64(c.total))
	cells := int(f * progressBarWidth)
	return fmt.Sprintf("[%s%s] %5.1f%%  ", strings.Repeat("#", cells), strings.Repeat("-", progressBarWidth-cells), 100*f)
}

// sendBatch sends one batch, again after UNAVAILABLE or a timeout (the same
// events: the server counts what it stored already as duplicates).
func sendBatch(ctx context.Context, api metricsv1.MetricsServiceClient, events []*metricsv1.UsabilityEvent, retries int, timeout time.Duration, sum *sendSummary) (*metricsv1.RecordMetricsResponse, error) {
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		sum.Requests++
		rctx, cancel := context.WithTimeout(ctx, timeout)
		resp, err := api.RecordMetrics(rctx, &metricsv1.RecordMetricsRequest{Events: events})
		cancel()
		code := status.Code(err)
		if err == nil || attempt >= retries || ctx.Err() != nil || (code != codes.Unavailable && code != codes.DeadlineExceeded) {
			return resp, err
		}
		sum.Retries++
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// parseEventLine reads one event; a short kind ("click") is accepted too.
func parseEventLine(text string) (*metricsv1.UsabilityEvent, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(text), &fields); err != nil {
		return nil, err
	}
	if raw, ok := fields["kind"]; ok {
		var kind string
		if json.Unmarshal(raw, &kind) == nil && kind != "" && !strings.HasPrefix(kind, "EVENT_KIND_") {
			fields["kind"], _ = json.Marshal("EVENT_KIND_" + strings.ToUpper(kind))
			b, err := json.Marshal(fields)
			if err != nil {
				return nil, err
			}
			text = string(b)
		}
	}
	ev := &metricsv1.UsabilityEvent{}
	if err := protojson.Unmarshal([]byte(text), ev); err != nil {
		return nil, errors.New(strings.TrimPrefix(err.Error(), "proto: "))
	}
	return ev, nil
}

func printSendSummary(w io.Writer, s sendSummary) {
	fmt.Fprintf(w, "%d events: %d accepted, %d duplicates, %d rejected (%d requests, %d retries)\n",
		s.Events, s.Accepted, s.Duplicates, len(s.Rejected), s.Requests, s.Retries)
	const shown = 20
	for i, r := range s.Rejected {
		if i == shown {
			fmt.Fprintf(w, "  … and %d more (--json lists all)\n", len(s.Rejected)-shown)
			break
		}
		where := r.Field
		if where != "" {
			where += ": "
		}
		fmt.Fprintf(w, "  line %d: %s%s\n", r.Line, where, r.Reason)
	}
}

func newRatingsCommand() *cobra.Command {
	cmd, f := newMetricsGroup("ratings", "Read students' ratings")
	var classroom, app, item string
	var since time.Duration
	var start, end string
	summary := &cobra.Command{
		Use:   "summary (--classroom C | --app A) [--item I] [--since 168h | --start T --end T]",
		Short: "Count, mean and distribution of ratings over a window",
		RunE: func(cmd *cobra.Command, _ []string) error {
			if classroom == "" && app == "" {
				return usageError{errors.New("give --classroom or --app (or both)")}
			}
			req := &metricsv1.GetRatingSummaryRequest{ClassroomId: classroom, AppId: app, ItemId: item}
			now := time.Now()
			switch {
			case start != "" || end != "":
				if cmd.Flags().Changed("since") {
					return usageError{errors.New("--since and --start/--end exclude each other")}
				}
				var err error
				if req.StartTime, err = parseTimeFlag("start", start); err != nil {
					return err
				}
				if req.EndTime, err = parseTimeFlag("end", end); err != nil {
					return err
				}
			case since > 0:
				req.StartTime, req.EndTime = timestamppb.New(now.Add(-since)), timestamppb.New(now)
			case since < 0:
				return usageError{fmt.Errorf("--since must be positive, got %v", since)}
			}
			return f.call(cmd, func(ctx context.Context, c *metricsClient) error {
				resp, err := c.api.GetRatingSummary(ctx, req)
				if err != nil {
					return err
				}
				return f.print(cmd.OutOrStdout(), resp, func(w io.Writer) error { return printRatingSummary(w, resp) })
			})
		},
	}
	summary.Flags().StringVar(&classroom, "classroom", "", "classroom id")
	summary.Flags().StringVar(&app, "app", "", "app id")
	summary.Flags().StringVar(&item, "item", "", "only this item")
	summary.Flags().DurationVar(&since, "since", 7*24*time.Hour, "window ending now")
	summary.Flags().StringVar(&start, "start", "", "window start, RFC 3339 (instead of --since)")
	summary.Flags().StringVar(&end, "end", "", "window end, RFC 3339 (default now)")
	cmd.AddCommand(summary)
	return cmd
}

func parseTimeFlag(flag, v string) (*timestamppb.Timestamp, error) {
	if v == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return nil, usageError{fmt.Errorf("invalid value %q for --%s: want an RFC 3339 time such as 2026-12-01T09:00:00Z", v, flag)}
	}
	return timestamppb.New(t), nil
}

func printRatingSummary(w io.Writer, s *metricsv1.GetRatingSummaryResponse) error {
	fmt.Fprintf(w, "%d ratings, mean %.2f, %s to %s\n", s.Count, s.Mean,
		s.StartTime.AsTime().Local().Format("2006-01-02 15:04"), s.EndTime.AsTime().Local().Format("2006-01-02 15:04"))
	for _, b := range s.Distribution {
		bar := 0
		if s.Count > 0 {
			bar = int(40 * b.Count / s.Count)
		}
		fmt.Fprintf(w, "  %d  %-40s %d\n", b.Rating, strings.Repeat("#", bar), b.Count)
	}
	return nil
}

func newClassroomCommand() *cobra.Command {
	cmd, f := newMetricsGroup("classroom", "Read a classroom's per-minute snapshots")
	var since time.Duration
	var limit int
	snaps := &cobra.Command{
		Use:   "snapshots CLASSROOM [--since 1h] [--limit N]",
		Short: "A classroom's per-minute rollups, oldest first",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if since <= 0 {
				return usageError{fmt.Errorf("--since must be positive, got %v", since)}
			}
			if err := checkIntRange("limit", limit, 1, 100_000); err != nil {
				return err
			}
			now := time.Now()
			return f.call(cmd, func(ctx context.Context, c *metricsClient) error {
				all := &metricsv1.ListClassroomSnapshotsResponse{}
				token := ""
				for len(all.Snapshots) < limit {
					resp, err := c.api.ListClassroomSnapshots(ctx, &metricsv1.ListClassroomSnapshotsRequest{ClassroomId: args[0],
						StartTime: timestamppb.New(now.Add(-since)), EndTime: timestamppb.New(now), PageSize: int32(min(1440, limit-len(all.Snapshots))), PageToken: token})
					if err != nil {
						return err
					}
					all.Snapshots = append(all.Snapshots, resp.Snapshots...)
					if token = resp.NextPageToken; token == "" {
						break
					}
				}
				return f.print(cmd.OutOrStdout(), all, func(w io.Writer) error { return printSnapshots(w, all.Snapshots) })
			})
		},
	}
	snaps.Flags().DurationVar(&since, "since", time.Hour, "how far back from now")
	snaps.Flags().IntVar(&limit, "limit", 1440, "at most this many minutes")
	cmd.AddCommand(snaps)
	return cmd
}

func printSnapshots(w io.Writer, snaps []*metricsv1.ClassroomSnapshot) error {
	if len(snaps) == 0 {
		_, err := fmt.Fprintln(w, "no events in that window")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MINUTE\tSTUDENTS\tEVENTS\tERROR RATE\tHESITATION\tFRUSTRATED\tHARDEST ITEMS")
	for _, s := range snaps {
		var items []string
		for _, it := range s.HardestItems {
			items = append(items, fmt.Sprintf("%s %.0f%% (%d/%d)", it.ItemId, 100*it.ErrorRate, it.Errors, it.Attempts))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f%%\t%s\t%d\t%s\n", s.Minute.AsTime().Local().Format("2006-01-02 15:04"), s.ActiveStudents, s.Events,
			100*s.ErrorRate, s.MeanHesitation.AsDuration().Round(100*time.Millisecond), s.FrustratedStudents, strings.Join(items, ", "))
	}
	return tw.Flush()
}
