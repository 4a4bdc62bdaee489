//go:build !linux

package buffer

import "os"

// preallocate extends f to size; without fallocate the file is sparse,
// which is still correct because zeros mark the end of data.
func preallocate(f *os.File, size int64) error { return f.Truncate(size) }

// fdatasync flushes f; other systems get a full fsync.
func fdatasync(f *os.File) error { return f.Sync() }

// kernelClockSynced cannot tell on this system, so it reports false and
// max_age never deletes unless Options.ClockSynced says otherwise.
func kernelClockSynced() bool { return false }
