package detect

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// plural writes "1 click" or "3 clicks".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// span writes a duration the way a teacher reads it: "0.8 s", "42 s",
// "2 min", "1 min 50 s", "1 h 5 min".
func span(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d < time.Minute {
		s := d.Seconds()
		if s < 10 && math.Abs(s-math.Round(s)) >= 0.05 {
			return strconv.FormatFloat(math.Round(s*10)/10, 'f', 1, 64) + " s"
		}
		return strconv.Itoa(int(math.Round(s))) + " s"
	}
	d = d.Round(time.Second)
	h, m, s := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	switch {
	case h > 0 && m > 0:
		return fmt.Sprintf("%d h %d min", h, m)
	case h > 0:
		return fmt.Sprintf("%d h", h)
	case s > 0:
		return fmt.Sprintf("%d min %d s", m, s)
	default:
		return fmt.Sprintf("%d min", m)
	}
}

// itemName quotes nothing and never leaves a hole: "item fractions-7", or
// "an item" when the app sent none.
func itemName(item string) string {
	if item == "" {
		return "an item"
	}
	return "item " + item
}

func percent(f float64) string {
	return strconv.Itoa(int(math.Round(f*100))) + " %"
}

func formatInt(v int64) string { return strconv.FormatInt(v, 10) }
