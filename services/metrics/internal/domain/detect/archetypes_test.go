package detect_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gaia-platform/gaia/services/metrics/internal/domain/detect"
)

// lessonSeconds is how long a scripted lesson lasts (event time).
var lessonSeconds = 2400.0

// lesson scripts one student working through items for lessonSeconds.
type lesson struct {
	rng    *rand.Rand
	id     string
	now    float64
	events []ev
}

func (l *lesson) wait(lo, hi float64) { l.now += lo + l.rng.Float64()*(hi-lo) }

func (l *lesson) add(e ev) { l.events = append(l.events, by(l.id, e)) }

// typeAnswer types n keys, one in every `every` a deletion (none when 0).
func (l *lesson) typeAnswer(n int, gapLo, gapHi float64, every int) {
	for i := range n {
		l.wait(gapLo, gapHi)
		l.add(key(l.now, every > 0 && i%every == every-1))
	}
}

// slowStudent reads long, types slowly, is right most of the time and never
// pauses two minutes mid-item.
func slowStudent(seed uint64, id string) []ev {
	l := &lesson{rng: rand.New(rand.NewPCG(seed, 1)), id: id}
	for item := 0; l.now < lessonSeconds; item++ {
		name := fmt.Sprintf("item-%d", item)
		l.add(start(l.now, name))
		l.wait(40, 100)
		l.add(by(l.id, base(l.now, detect.KindHesitation)))
		for try := 0; try < 2; try++ {
			l.typeAnswer(10+l.rng.IntN(20), 0.4, 1.5, 10)
			l.wait(5, 30)
			l.add(click(l.now, 300, 400))
			right := try == 1 || l.rng.Float64() < 0.7
			l.add(attempt(l.now+0.1, name, right))
			if right {
				break
			}
			l.wait(20, 60)
		}
		l.wait(2, 10)
		l.add(finish(l.now, name))
		if l.rng.IntN(4) == 0 {
			l.add(rating(l.now+1, name, 3+int32(l.rng.IntN(3))))
		}
		l.wait(60, 200) // a break between items: not mid-item
	}
	return l.events
}

// fastStudent clicks and answers quickly, all over the page, and is usually
// right; after a wrong answer they look at the feedback for a few seconds.
func fastStudent(seed uint64, id string) []ev {
	l := &lesson{rng: rand.New(rand.NewPCG(seed, 2)), id: id}
	for item := 0; l.now < lessonSeconds; item++ {
		name := fmt.Sprintf("item-%d", item)
		l.add(start(l.now, name))
		for try := 0; try < 2; try++ {
			for c := 0; c < 4; c++ {
				l.wait(0.15, 0.4)
				l.add(click(l.now, int32(100+200*c), int32(100+150*(c%2))))
			}
			l.typeAnswer(5+l.rng.IntN(6), 0.08, 0.15, 0)
			l.wait(0.3, 1)
			right := try == 1 || l.rng.Float64() < 0.92
			l.add(attempt(l.now, name, right))
			if right {
				break
			}
			l.wait(2.5, 6)
		}
		l.add(finish(l.now+0.5, name))
		l.wait(1, 5)
	}
	return l.events
}

// carefulStudent rewrites a lot (one keystroke in three deletes), double-checks
// with double clicks, pauses up to 1 min 50 s mid-item, and gets most items
// right after one wrong answer.
func carefulStudent(seed uint64, id string) []ev {
	l := &lesson{rng: rand.New(rand.NewPCG(seed, 3)), id: id}
	for item := 0; l.now < lessonSeconds; item++ {
		name := fmt.Sprintf("item-%d", item)
		l.add(start(l.now, name))
		for try := 0; try < 2; try++ {
			l.wait(30, 110)
			l.typeAnswer(25+l.rng.IntN(15), 0.5, 1.2, 3)
			l.wait(10, 60)
			l.add(click(l.now, 500, 500))
			l.add(click(l.now+0.3, 502, 501))
			right := try == 1 || l.rng.Float64() < 0.5
			l.add(attempt(l.now+0.4, name, right))
			if right {
				break
			}
		}
		l.wait(3, 20)
		l.add(finish(l.now, name))
		l.add(rating(l.now+2, name, 4))
		l.wait(5, 30)
	}
	return l.events
}

// Students who are merely slow, fast or careful never alert, whoever their
// classmates are.
func TestQuietStudentsStayQuiet(t *testing.T) {
	seeds := uint64(6)
	if testing.Short() {
		seeds = 2
	}
	for seed := uint64(1); seed <= seeds; seed++ {
		var all []ev
		for i := range 4 {
			all = append(all, slowStudent(seed*10+uint64(i), fmt.Sprintf("slow-%d", i))...)
			all = append(all, fastStudent(seed*10+uint64(i), fmt.Sprintf("fast-%d", i))...)
			all = append(all, carefulStudent(seed*10+uint64(i), fmt.Sprintf("careful-%d", i))...)
		}
		sortByTime(all)
		en := newEngine(detect.DefaultConfig())
		ds := feed(en, all...)
		ds = append(ds, en.Tick(at(100000))...)
		if len(ds) != 0 {
			for _, d := range ds {
				t.Errorf("seed %d: %s: %s %q", seed, d.StudentID, d.Indicator, d.Reasons)
			}
			t.FailNow()
		}
	}
}
