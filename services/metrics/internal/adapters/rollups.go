package adapters

import (
	"context"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/usability"
)

type minuteKey struct {
	classroom string
	minute    int64 // Unix seconds of the minute's start
}

type minuteAgg struct {
	events, attempts, wrong, errorEvents, hesCount int64
	hesSum                                         float64
}

type studentKey struct {
	minuteKey
	student string
}

type itemKey struct {
	minuteKey
	item string
}

type itemAgg struct{ attempts, wrong, errorEvents int64 }

// updateRollups adds events to the per-minute classroom rollups in tx: one
// round trip for the whole chunk, rows touched in key order.
func updateRollups(ctx context.Context, tx pgx.Tx, events []usability.Event) error {
	minutes := map[minuteKey]*minuteAgg{}
	students := map[studentKey]struct{}{}
	items := map[itemKey]*itemAgg{}
	for i := range events {
		e := &events[i]
		mk := minuteKey{e.ClassroomID, usability.Minute(e.OccurredAt).Unix()}
		m := minutes[mk]
		if m == nil {
			m = &minuteAgg{}
			minutes[mk] = m
		}
		m.events++
		students[studentKey{mk, e.StudentID}] = struct{}{}
		switch e.Kind {
		case usability.KindAttempt:
			m.attempts++
			if e.IsError() {
				m.wrong++
			}
		case usability.KindError:
			m.errorEvents++
		case usability.KindHesitation:
			m.hesCount++
			m.hesSum += e.Value
		}
		if e.ItemID != "" && (e.Kind == usability.KindAttempt || e.Kind == usability.KindError) {
			ik := itemKey{mk, e.ItemID}
			it := items[ik]
			if it == nil {
				it = &itemAgg{}
				items[ik] = it
			}
			if e.Kind == usability.KindAttempt {
				it.attempts++
				if e.IsError() {
					it.wrong++
				}
			} else {
				it.errorEvents++
			}
		}
	}
	if len(minutes) == 0 {
		return nil
	}

	mkeys := make([]minuteKey, 0, len(minutes))
	for k := range minutes {
		mkeys = append(mkeys, k)
	}
	sort.Slice(mkeys, func(a, b int) bool { return lessMinute(mkeys[a], mkeys[b]) })
	n := len(mkeys)
	mc, mm := make([]string, n), make([]time.Time, n)
	ev, at, wr, ee, hc := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	hs := make([]float64, n)
	for i, k := range mkeys {
		a := minutes[k]
		mc[i], mm[i] = k.classroom, time.Unix(k.minute, 0).UTC()
		ev[i], at[i], wr[i], ee[i], hc[i], hs[i] = a.events, a.attempts, a.wrong, a.errorEvents, a.hesCount, a.hesSum
	}

	skeys := make([]studentKey, 0, len(students))
	for k := range students {
		skeys = append(skeys, k)
	}
	sort.Slice(skeys, func(a, b int) bool {
		if skeys[a].minuteKey != skeys[b].minuteKey {
			return lessMinute(skeys[a].minuteKey, skeys[b].minuteKey)
		}
		return skeys[a].student < skeys[b].student
	})
	sc, sm, ss := make([]string, len(skeys)), make([]time.Time, len(skeys)), make([]string, len(skeys))
	for i, k := range skeys {
		sc[i], sm[i], ss[i] = k.classroom, time.Unix(k.minute, 0).UTC(), k.student
	}

	batch := &pgx.Batch{}
	// Students first (the CTE), then the minute rows, both sorted.
	batch.Queue(`
		WITH new_students AS (
			INSERT INTO metrics.classroom_minute_students (classroom_id, minute, student_id)
			SELECT c, m, s FROM unnest($1::text[], $2::timestamptz[], $3::text[]) AS u(c, m, s) ORDER BY c, m, s
			ON CONFLICT DO NOTHING
			RETURNING classroom_id, minute
		), counts AS (
			SELECT classroom_id, minute, count(*) AS n FROM new_students GROUP BY classroom_id, minute
		)
		INSERT INTO metrics.classroom_minutes AS cm (classroom_id, minute, events, active_students, attempts,
			wrong_attempts, error_events, hesitation_sum, hesitation_count)
		SELECT u.c, u.m, u.ev, coalesce(counts.n, 0), u.at, u.wr, u.ee, u.hs, u.hc
		FROM unnest($4::text[], $5::timestamptz[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::float8[], $11::bigint[])
			AS u(c, m, ev, at, wr, ee, hs, hc)
		LEFT JOIN counts ON counts.classroom_id = u.c AND counts.minute = u.m
		ORDER BY u.c, u.m
		ON CONFLICT (classroom_id, minute) DO UPDATE SET
			events = cm.events + excluded.events,
			active_students = cm.active_students + excluded.active_students,
			attempts = cm.attempts + excluded.attempts,
			wrong_attempts = cm.wrong_attempts + excluded.wrong_attempts,
			error_events = cm.error_events + excluded.error_events,
			hesitation_sum = cm.hesitation_sum + excluded.hesitation_sum,
			hesitation_count = cm.hesitation_count + excluded.hesitation_count,
			last_xid = pg_current_xact_id()`,
		sc, sm, ss, mc, mm, ev, at, wr, ee, hs, hc)

	if len(items) > 0 {
		ikeys := make([]itemKey, 0, len(items))
		for k := range items {
			ikeys = append(ikeys, k)
		}
		sort.Slice(ikeys, func(a, b int) bool {
			if ikeys[a].minuteKey != ikeys[b].minuteKey {
				return lessMinute(ikeys[a].minuteKey, ikeys[b].minuteKey)
			}
			return ikeys[a].item < ikeys[b].item
		})
		k := len(ikeys)
		ic, im, ii := make([]string, k), make([]time.Time, k), make([]string, k)
		ia, iw, ie := make([]int64, k), make([]int64, k), make([]int64, k)
		for i, key := range ikeys {
			a := items[key]
			ic[i], im[i], ii[i] = key.classroom, time.Unix(key.minute, 0).UTC(), key.item
			ia[i], iw[i], ie[i] = a.attempts, a.wrong, a.errorEvents
		}
		batch.Queue(`
			INSERT INTO metrics.classroom_minute_items AS ci (classroom_id, minute, item_id, attempts, wrong_attempts, error_events)
			SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[])
			ORDER BY 1, 2, 3
			ON CONFLICT (classroom_id, minute, item_id) DO UPDATE SET
				attempts = ci.attempts + excluded.attempts,
				wrong_attempts = ci.wrong_attempts + excluded.wrong_attempts,
				error_events = ci.error_events + excluded.error_events`,
			ic, im, ii, ia, iw, ie)
	}
	return tx.SendBatch(ctx, batch).Close()
}

func lessMinute(a, b minuteKey) bool {
	if a.classroom != b.classroom {
		return a.classroom < b.classroom
	}
	return a.minute < b.minute
}
