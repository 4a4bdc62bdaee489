// Package backoff computes the exponential waits of the drivers' retries.
package backoff

import "time"

// Delay is the wait before the n-th retry in a row: first, doubled for
// each retry after the first, and never more than limit. An n below 1 is
// the first retry.
func Delay(first, limit time.Duration, n int) time.Duration {
	d := first
	for ; n > 1 && d < limit; n-- {
		if d > limit/2 {
			return limit
		}
		d *= 2
	}
	return min(d, limit)
}
