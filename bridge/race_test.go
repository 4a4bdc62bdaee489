//go:build race

package bridge

// raceEnabled shrinks the heaviest tests under the race detector.
const raceEnabled = true
