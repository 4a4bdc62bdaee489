package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/fieldbridge/gateway/buffer"
	"github.com/fieldbridge/gateway/gateway"
)

// bufferStats is one bridge's line of `gateway buffer stats`.
type bufferStats struct {
	Bridge      string  `json:"bridge"`
	Messages    uint64  `json:"messages"`
	Bytes       int64   `json:"bytes"`
	OldestAge   float64 `json:"oldest_age_seconds"`
	Dropped     uint64  `json:"dropped"`
	Quarantined int     `json:"quarantined_segments"`
	Error       string  `json:"error,omitempty"`
}

func cmdBuffer(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "stats" {
		if len(args) > 0 && (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
			fmt.Fprintln(stdout, "Usage: gateway buffer stats --data-dir DIR [--json]")
			return exitOK
		}
		fmt.Fprintln(stderr, "Usage: gateway buffer stats --data-dir DIR [--json]")
		return exitUsage
	}
	fs := newFlags("buffer stats", "buffer stats --data-dir DIR [--json]", stderr)
	dataDir := fs.String("data-dir", "", "the gateway's data_dir")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if code, ok := parse(fs, args[1:]); !ok {
		return code
	}
	if *dataDir == "" {
		fmt.Fprintln(stderr, "gateway buffer stats: --data-dir is required")
		return exitUsage
	}
	// A mistyped --data-dir must not read as an empty backlog; a data_dir
	// whose gateway has no bridge yet has no buffers folder, and that is
	// an empty backlog.
	if st, err := os.Stat(*dataDir); err != nil || !st.IsDir() {
		if err == nil {
			err = fmt.Errorf("%s is not a directory", *dataDir)
		}
		fmt.Fprintln(stderr, "gateway buffer stats: data_dir:", err)
		return exitFailure
	}
	root := gateway.BuffersDir(*dataDir)
	entries, err := os.ReadDir(root)
	if err != nil && !os.IsNotExist(err) {
		fmt.Fprintln(stderr, "gateway buffer stats:", err)
		return exitFailure
	}
	var out []bufferStats
	failed := false
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		bs := bufferStats{Bridge: e.Name()}
		// Inspect reads without locking, so it works while the gateway runs.
		st, err := buffer.Inspect(filepath.Join(root, e.Name()))
		if err != nil {
			bs.Error = err.Error()
			failed = true
		} else {
			bs.Messages, bs.Bytes, bs.OldestAge = st.Messages, st.Bytes, st.OldestAge.Seconds()
			bs.Dropped, bs.Quarantined = st.Dropped.Total(), st.Quarantined
		}
		out = append(out, bs)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Bridge < out[j].Bridge })
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if out == nil {
			out = []bufferStats{}
		}
		enc.Encode(out)
	} else {
		if len(out) == 0 {
			fmt.Fprintf(stdout, "no bridge buffers in %s\n", root)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		if len(out) > 0 {
			fmt.Fprintln(tw, "BRIDGE\tMESSAGES\tBYTES\tOLDEST\tDROPPED\tQUARANTINED\t")
		}
		for _, b := range out {
			if b.Error != "" {
				fmt.Fprintf(tw, "%s\terror: %s\t\t\t\t\t\n", b.Bridge, b.Error)
				continue
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%d\t\n", b.Bridge, b.Messages, b.Bytes,
				time.Duration(b.OldestAge*float64(time.Second)).Round(time.Second), b.Dropped, b.Quarantined)
		}
		tw.Flush()
	}
	if failed {
		return exitFailure
	}
	return exitOK
}
