//go:build linux

package buffer

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// preallocate reserves size bytes for f so that later writes inside the
// file do not change its size or allocate blocks, and an fdatasync after
// each write need not commit metadata.
func preallocate(f *os.File, size int64) error {
	err := fileControl(f, func(fd int) error {
		return retryEINTR(func() error { return unix.Fallocate(fd, 0, 0, size) })
	})
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		// File systems without fallocate get a sparse file: still correct,
		// zeros mark the end of data.
		return f.Truncate(size)
	}
	return err
}

// fdatasync flushes f's data and the metadata needed to read it back.
func fdatasync(f *os.File) error {
	return fileControl(f, func(fd int) error {
		return retryEINTR(func() error { return unix.Fdatasync(fd) })
	})
}

// kernelClockSynced asks the kernel whether NTP (or another time source)
// has synchronized the system clock.
func kernelClockSynced() bool {
	var tx unix.Timex
	if _, err := unix.Adjtimex(&tx); err != nil {
		return false
	}
	return tx.Status&unix.STA_UNSYNC == 0
}

// fileControl runs fn on f's descriptor while holding a reference to it,
// so a concurrent Close cannot recycle the descriptor under fn.
func fileControl(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

func retryEINTR(fn func() error) error {
	for {
		if err := fn(); err != unix.EINTR {
			return err
		}
	}
}
