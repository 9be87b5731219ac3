package service_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dashboardv1 "github.com/gaia-platform/gaia/proto/gaia/dashboard/v1"
	metricsv1 "github.com/gaia-platform/gaia/proto/gaia/metrics/v1"
	"github.com/gaia-platform/gaia/services/dashboard/dashboardtest"
)

// BenchmarkAlertLatency measures the teacher pipeline end to end: the clicks
// of a rage click posted to POST /v1/metrics → stored → detected → alert →
// received by each subscribed teacher of the classroom. 500 teachers are
// subscribed (5 per classroom, 100 classrooms) while background events arrive
// at 0 (the baseline), 1,000 and 10,000 events/s; a probe rage click is posted
// every 100 ms. One op is a whole measurement (run with -benchtime 1x);
// GAIA_BENCH_ALERT_SECONDS sets each load's length (default 10).
func BenchmarkAlertLatency(b *testing.B) {
	seconds := 10
	if v, err := strconv.Atoi(os.Getenv("GAIA_BENCH_ALERT_SECONDS")); err == nil && v > 0 {
		seconds = v
	}
	const classrooms, perClassroom, students = 100, 5, 30
	sys := startSystem(b, dashboardtest.Options{})
	sys.warmUp()
	for c := range classrooms {
		for k := range perClassroom {
			sys.assign(fmt.Sprintf("teacher-%d-%d", c, k), fmt.Sprintf("bench-room-%d", c), "")
		}
	}
	var mu sync.Mutex
	posted := map[string]time.Time{}    // probe student → when its clicks were posted
	var samples, stored []time.Duration // post → received; post → alert stored
	ctx, cancel := context.WithCancel(sys.ctx)
	defer cancel()
	cli := sys.dash.Client()
	var subs sync.WaitGroup
	for c := range classrooms {
		for k := range perClassroom {
			stream, err := cli.SubscribeAlerts(ctx, &dashboardv1.SubscribeAlertsRequest{TeacherId: fmt.Sprintf("teacher-%d-%d", c, k)})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := stream.Header(); err != nil {
				b.Fatal(err)
			}
			subs.Add(1)
			go func() {
				defer subs.Done()
				for {
					m, err := stream.Recv()
					if err != nil {
						return
					}
					a := m.GetAlert()
					if a == nil || !strings.HasPrefix(a.GetStudentId(), "probe-") {
						continue
					}
					now := time.Now()
					mu.Lock()
					if at, ok := posted[a.GetStudentId()]; ok {
						samples = append(samples, now.Sub(at))
						stored = append(stored, a.GetCreatedAt().AsTime().Sub(at))
					}
					mu.Unlock()
				}
			}()
		}
	}

	probe := 0
	// The first pass only warms up (caches, connections, the detector's
	// partitions settling); it is not reported.
	for pass, rate := range []int{0, 0, 1000, 10000} {
		mu.Lock()
		samples, stored = samples[:0], stored[:0]
		clear(posted)
		mu.Unlock()
		runCtx, stop := context.WithTimeout(ctx, time.Duration(seconds)*time.Second)
		var load sync.WaitGroup
		var sent, failed int64
		var loadMu sync.Mutex
		if rate > 0 {
			// Batches of 100 events, paced, from 16 senders.
			const batch = 100
			batches := make(chan []restEvent, 64)
			for range 16 {
				load.Add(1)
				go func() {
					defer load.Done()
					for evs := range batches {
						err := sys.postEvents(ctx, evs)
						loadMu.Lock()
						if err != nil {
							failed += int64(len(evs))
						} else {
							sent += int64(len(evs))
						}
						loadMu.Unlock()
					}
				}()
			}
			load.Add(1)
			go func() {
				defer load.Done()
				defer close(batches)
				tick := time.NewTicker(time.Second * batch / time.Duration(rate))
				defer tick.Stop()
				n := 0
				for {
					select {
					case <-runCtx.Done():
						return
					case <-tick.C:
					}
					evs := make([]restEvent, batch)
					now := time.Now().UTC().Format(time.RFC3339Nano)
					for i := range evs {
						n++
						c, s := rand.IntN(classrooms), rand.IntN(students)
						evs[i] = restEvent{EventID: fmt.Sprintf("bg-%d-%d", rate, n), AppID: "fractions-app", ClassroomID: fmt.Sprintf("bench-room-%d", c),
							StudentID: fmt.Sprintf("s-%d", s), ItemID: "q1", Kind: "EVENT_KIND_KEYSTROKE", OccurredAt: now}
					}
					select {
					case batches <- evs:
					case <-runCtx.Done():
						return
					}
				}
			}()
		}
		probes := 0
		tick := time.NewTicker(100 * time.Millisecond)
	probing:
		for {
			select {
			case <-runCtx.Done():
				break probing
			case <-tick.C:
			}
			probe++
			probes++
			student := fmt.Sprintf("probe-%d", probe)
			evs := sys.rageClick(fmt.Sprintf("bench-room-%d", rand.IntN(classrooms)), student)
			mu.Lock()
			posted[student] = time.Now()
			mu.Unlock()
			if err := sys.postEvents(ctx, evs); err != nil {
				b.Fatal(err)
			}
		}
		tick.Stop()
		stop()
		load.Wait()
		// Let the last probes arrive.
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			n := len(samples)
			mu.Unlock()
			if n >= probes*perClassroom || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		mu.Lock()
		got, st := slices.Clone(samples), slices.Clone(stored)
		sentAt := maps.Clone(posted)
		mu.Unlock()
		// The detector's share: when it stored each probe's frustration event.
		var detected []time.Duration
		req := &metricsv1.ListFrustrationEventsRequest{PageSize: 1000}
		for {
			resp, err := sys.metrics.Client().ListFrustrationEvents(ctx, req)
			if err != nil {
				b.Fatal(err)
			}
			for _, e := range resp.GetEvents() {
				if at, ok := sentAt[e.GetStudentId()]; ok {
					detected = append(detected, e.GetDetectedAt().AsTime().Sub(at))
				}
			}
			if resp.GetNextPageToken() == "" {
				break
			}
			req.PageToken = resp.GetNextPageToken()
		}
		slices.Sort(detected)
		slices.Sort(got)
		slices.Sort(st)
		if len(got) == 0 {
			b.Fatalf("at %d events/s no probe alert reached a teacher", rate)
		}
		pct := func(p float64) float64 { return float64(got[int(p*float64(len(got)-1))]) / float64(time.Millisecond) }
		if pass == 0 {
			continue
		}
		name := "baseline"
		if rate > 0 {
			name = fmt.Sprintf("at-%d", rate)
		}
		b.ReportMetric(pct(0.5), name+"-p50-ms")
		b.ReportMetric(pct(0.99), name+"-p99-ms")
		b.ReportMetric(float64(sent)/float64(seconds), name+"-events/s")
		b.ReportMetric(float64(probes*perClassroom-len(got)), name+"-missed")
		b.Logf("%s: %d probe deliveries of %d, p50 %.1f ms, p99 %.1f ms, max %.1f ms (frustration event stored after p50 %.1f ms, p99 %.1f ms; alert stored after p50 %.1f ms, p99 %.1f ms); background %d events sent, %d failed",
			name, len(got), probes*perClassroom, pct(0.5), pct(0.99), pct(1),
			ms(detected, 0.5), ms(detected, 0.99), float64(st[len(st)/2])/1e6, float64(st[int(0.99*float64(len(st)-1))])/1e6, sent, failed)
	}
	cancel()
	subs.Wait()
}

func ms(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(p*float64(len(sorted)-1))]) / float64(time.Millisecond)
}
