//go:build unix

package modbus

import "syscall"

// readNow reads what a non-blocking socket holds, without waiting.
func readNow(fd uintptr, buf []byte) int {
	n, _ := syscall.Read(int(fd), buf)
	return n
}
