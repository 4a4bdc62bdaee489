//go:build linux

package gpio

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/warthog618/go-gpiocdev"
	"golang.org/x/sys/unix"
)

// consumer is the label the kernel shows for our lines (gpioinfo), so that
// whoever finds a line busy can tell who holds it.
const consumer = "fieldbridge"

// eventBuffer is the kernel's queue of edge events per line. When it
// overflows the kernel drops the oldest, so the newest level is never lost;
// 64 covers a contact bouncing for a few milliseconds.
const eventBuffer = 64

// cdev is the hardware of the GPIO character device (/dev/gpiochipN).
type cdev struct{}

func newHardware() hardware { return cdev{} }

func (cdev) request(chip string, cfg lineConfig, onEdge func(edge)) (hwLine, error) {
	c, err := gpiocdev.NewChip(chip, gpiocdev.WithConsumer(consumer))
	if err != nil {
		return nil, chipError(chip, err)
	}
	// Requested lines outlive the chip handle.
	defer c.Close()
	if cfg.offset >= c.Lines() {
		return nil, fmt.Errorf("no such line: %s has %d lines (0..%d)", chip, c.Lines(), c.Lines()-1)
	}
	opts := []gpiocdev.LineReqOption{gpiocdev.WithConsumer(consumer)}
	if cfg.activeLow {
		opts = append(opts, gpiocdev.AsActiveLow)
	}
	switch cfg.bias {
	case biasPullUp:
		opts = append(opts, gpiocdev.WithPullUp)
	case biasPullDown:
		opts = append(opts, gpiocdev.WithPullDown)
	case biasDisabled:
		opts = append(opts, gpiocdev.WithBiasDisabled)
	}
	if cfg.output {
		v := 0
		if cfg.initial {
			v = 1
		}
		opts = append(opts, gpiocdev.AsOutput(v))
	} else {
		opts = append(opts, gpiocdev.AsInput)
	}
	if cfg.edges {
		opts = append(opts, gpiocdev.WithBothEdges, gpiocdev.WithEventBufferSize(eventBuffer),
			gpiocdev.WithEventHandler(func(e gpiocdev.LineEvent) {
				onEdge(edge{active: e.Type == gpiocdev.LineEventRisingEdge, at: eventTime(e.Timestamp)})
			}))
	}
	l, err := c.RequestLine(cfg.offset, opts...)
	if err != nil {
		return nil, lineError(c, cfg.offset, err)
	}
	return cdevLine{l}, nil
}

// chipError explains why a chip could not be opened, keeping the cause
// for errors.Is.
func chipError(chip string, err error) error {
	path := chip
	if !strings.HasPrefix(path, "/dev/") {
		path = "/dev/" + chip
	}
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("chip not found: %s does not exist (is the GPIO driver loaded? gpiodetect lists chips): %w", path, err)
	case errors.Is(err, fs.ErrPermission), errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return fmt.Errorf("permission denied on %s: run the gateway as a user with access to it (group gpio on Raspberry Pi OS): %w", path, err)
	case errors.Is(err, gpiocdev.ErrNotCharacterDevice):
		return fmt.Errorf("%s is not a GPIO character device: %w", path, err)
	}
	return fmt.Errorf("open %s: %w", path, err)
}

// lineError explains why a line could not be requested.
func lineError(c *gpiocdev.Chip, offset int, err error) error {
	switch {
	case errors.Is(err, unix.EBUSY):
		holder := "another program or kernel driver"
		if info, ierr := c.LineInfo(offset); ierr == nil && info.Consumer != "" {
			holder = fmt.Sprintf("%q", info.Consumer)
		}
		return fmt.Errorf("line is busy: held by %s: %w", holder, err)
	case errors.Is(err, unix.EPERM), errors.Is(err, unix.EACCES):
		return fmt.Errorf("permission denied: %w", err)
	case errors.Is(err, unix.ENXIO), errors.Is(err, unix.EINVAL):
		return fmt.Errorf("the chip refused the line's settings (edge detection, bias or direction): %w", err)
	}
	return fmt.Errorf("request line: %w", err)
}

// eventTime places a kernel event timestamp (CLOCK_MONOTONIC since Linux
// 5.7) on the local clock, so that debouncing and pulse rates measure when
// the edge happened rather than when our goroutine got to it.
func eventTime(ts time.Duration) time.Time {
	now := time.Now()
	var mono unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono) != nil {
		return now
	}
	age := time.Duration(mono.Nano()) - ts
	if age < 0 || age > 10*time.Second {
		// Another clock (an old kernel's realtime stamps): arrival time.
		return now
	}
	return now.Add(-age)
}

type cdevLine struct{ l *gpiocdev.Line }

func (c cdevLine) value() (bool, error) {
	v, err := c.l.Value()
	return v == 1, err
}

func (c cdevLine) set(active bool) error {
	v := 0
	if active {
		v = 1
	}
	return c.l.SetValue(v)
}

func (c cdevLine) close() error { return c.l.Close() }
