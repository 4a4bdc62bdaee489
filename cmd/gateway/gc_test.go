package main

import "testing"

func TestGCPercentFollowsTheLoad(t *testing.T) {
	steps := []struct {
		perSecond float64
		want      int
	}{
		{0.1, gcLow},  // polling a few devices
		{1.9, gcLow},  // still below the threshold
		{2.5, gcHigh}, // a burst: collect less often
		{1.2, gcHigh}, // half as many collections at gcHigh for the same load: stay
		{0.6, gcHigh},
		{0.3, gcLow}, // calm again
		{1.0, gcLow},
	}
	pct := gcLow
	for i, s := range steps {
		pct = gcPercent(pct, s.perSecond)
		if pct != s.want {
			t.Errorf("step %d (%.1f collections/s): GOGC %d, want %d", i, s.perSecond, pct, s.want)
		}
	}
}
