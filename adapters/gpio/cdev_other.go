//go:build !linux

package gpio

import "errors"

// errNoCdev is what every request fails with off Linux: the GPIO character
// device is a Linux interface. The driver still builds, so that
// configurations can be validated on any system.
var errNoCdev = errors.New("GPIO needs Linux: the GPIO character device does not exist on this system")

type noHardware struct{}

func newHardware() hardware { return noHardware{} }

func (noHardware) request(string, lineConfig, func(edge)) (hwLine, error) { return nil, errNoCdev }
