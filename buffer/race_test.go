//go:build race

package buffer

// raceEnabled shrinks the heaviest tests under the race detector.
const raceEnabled = true
