package main

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The collector's setting follows the load. Every reading allocates a few
// short-lived objects inside the broker: at 200,000 readings/s the default
// GOGC=100 spends a third of the CPU collecting, and GOGC=200 recovers most
// of it. But GOGC also sets the smallest heap the collector lets grow
// before it runs (4 MiB at 100, 8 MiB at 200), and at the usual load (a
// few devices polled each second) that minimum is most of the gateway's
// heap. So the gateway starts at 100 and moves to 200 while it collects
// often, back once it calms down. GOGC or GOMEMLIMIT in the environment
// turn this off.
const (
	gcLow, gcHigh = 100, 200
	gcCheck       = time.Second
	// gcUp: collections per second at gcLow above which gcHigh pays: an
	// allocation rate of at least 8 MiB/s.
	gcUp = 2.0
	// gcDown: collections per second at gcHigh below which gcLow costs
	// little. At gcHigh a collection runs half as often for the same
	// allocation rate, so this is below gcUp/2: the gap keeps the setting
	// from flapping.
	gcDown = 0.5
)

// tuneGC starts the GOGC tuner, until ctx ends.
func tuneGC(ctx context.Context) {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(gcLow)
	go func() {
		t := time.NewTicker(gcCheck)
		defer t.Stop()
		sample := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
		cycles := func() uint64 {
			metrics.Read(sample)
			return sample[0].Value.Uint64()
		}
		pct, last, lastAt := gcLow, cycles(), time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				n := cycles()
				rate := float64(n-last) / now.Sub(lastAt).Seconds()
				last, lastAt = n, now
				if next := gcPercent(pct, rate); next != pct {
					debug.SetGCPercent(next)
					pct = next
				}
			}
		}
	}()
}

// gcPercent is the GOGC to run at, from the current one and the number of
// collections per second it gave.
func gcPercent(current int, perSecond float64) int {
	switch {
	case current == gcLow && perSecond >= gcUp:
		return gcHigh
	case current == gcHigh && perSecond < gcDown:
		return gcLow
	}
	return current
}
