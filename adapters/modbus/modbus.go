// Package modbus is the driver for Modbus devices: Modbus TCP, Modbus RTU on
// a serial port (RS-485) and RTU frames through a TCP serial server.
//
// A tour:
//
//   - config.go decodes a device entry strictly and checks it against the
//     protocol's limits, without I/O.
//   - plan.go merges a device's points into as few reads as the limits
//     (max_registers_per_read, max_bits_per_read, max_gap) allow, one plan
//     per set of due schedules, and splits a read that a device refuses with
//     exception 2 until the offending point stands alone.
//   - transport.go frames requests: MBAP over TCP, RTU over TCP and RTU on a
//     serial port; github.com/grid-x/modbus builds and checks the PDUs.
//   - runner.go is the goroutine that owns one connection: it polls every
//     device on it in turn, backs off failing ones, and applies commands
//     between polls (write.go).
//   - read.go is `gateway modbus read`, the commissioning tool.
package modbus

import (
	_ "embed"
	"errors"
	"fmt"

	gridx "github.com/grid-x/modbus"
)

// Sample is an example configuration of devices for this driver.
//
//go:embed sample.yaml
var Sample []byte

// Errors a caller may tell apart with errors.Is. Exceptions come as
// *Exception.
var (
	// ErrTimeout means the device did not answer within its timeout.
	ErrTimeout = errors.New("no reply within the timeout")
	// ErrFrame means a reply arrived but was malformed: bad CRC, wrong
	// length, wrong unit or function. The connection is resynchronised.
	ErrFrame = errors.New("malformed reply")
	// ErrConnection means the connection could not be opened or broke.
	ErrConnection = errors.New("connection failed")
)

// Exception codes of the Modbus application protocol that the driver acts
// on.
const (
	ExceptionIllegalFunction    = 1
	ExceptionIllegalDataAddress = 2
	ExceptionIllegalDataValue   = 3
	ExceptionDeviceFailure      = 4
)

// Exception is a Modbus exception reply: the device understood the request
// and refused it.
type Exception struct {
	Function byte // the function code of the request
	Code     byte // the exception code
}

// Error names the exception and the function it answered.
func (e *Exception) Error() string {
	return fmt.Sprintf("modbus exception %d (%s) to function %d", e.Code, exceptionName(e.Code), e.Function)
}

func exceptionName(code byte) string {
	switch code {
	case 1:
		return "illegal function"
	case 2:
		return "illegal data address"
	case 3:
		return "illegal data value"
	case 4:
		return "server device failure"
	case 5:
		return "acknowledge"
	case 6:
		return "server device busy"
	case 8:
		return "memory parity error"
	case 10:
		return "gateway path unavailable"
	case 11:
		return "gateway target device failed to respond"
	}
	return "unknown"
}

// isException reports whether err is a Modbus exception with the given code.
func isException(err error, code byte) bool {
	var e *Exception
	return errors.As(err, &e) && e.Code == code
}

// asException turns grid-x's exception error into an *Exception, leaving
// other errors alone.
func asException(err error) error {
	var ge *gridx.Error
	if errors.As(err, &ge) {
		return &Exception{Function: ge.FunctionCode & 0x7f, Code: ge.ExceptionCode}
	}
	return err
}

// errorKind names the class of a failed request for the errors metric.
func errorKind(err error) string {
	var e *Exception
	switch {
	case errors.As(err, &e):
		return "exception"
	case errors.Is(err, ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrConnection):
		return "connection"
	}
	return "frame"
}
