package gpio

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// stateFile is the name of the counter totals file in a device's state
// folder. It is JSON so that an operator can read it, or set a total while
// the gateway is stopped.
const stateFile = "counters.json"

// stateVersion is the format of the file; a file of another version is
// not trusted.
const stateVersion = 1

type stateDoc struct {
	Version int               `json:"version"`
	Totals  map[string]uint64 `json:"totals"` // by point name
}

// errNoState means there is no saved state yet: a first start, or a new
// state folder.
var errNoState = errors.New("no saved counter totals")

// loadTotals reads the totals saved in dir. A file that cannot be parsed
// is renamed aside (kept for whoever investigates) and reported; the
// caller then counts from 0.
func loadTotals(dir string) (map[string]uint64, error) {
	path := filepath.Join(dir, stateFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s", errNoState, path)
	}
	if err != nil {
		return nil, fmt.Errorf("read counter totals: %w", err)
	}
	var doc stateDoc
	err = json.Unmarshal(b, &doc)
	if err == nil && doc.Version != stateVersion {
		err = fmt.Errorf("version %d, want %d", doc.Version, stateVersion)
	}
	if err == nil && doc.Totals == nil {
		err = errors.New("no totals")
	}
	if err != nil {
		aside := path + ".corrupt"
		if rerr := os.Rename(path, aside); rerr != nil {
			return nil, fmt.Errorf("counter totals in %s are corrupt (%v) and could not be moved aside: %w", path, err, rerr)
		}
		return nil, fmt.Errorf("counter totals in %s are corrupt (moved to %s): %v", path, aside, err)
	}
	return doc.Totals, nil
}

// saveTotals replaces the totals file atomically: a crash or power cut at
// any moment leaves either the old file or the new one, never a torn one.
func saveTotals(dir string, totals map[string]uint64) error {
	b, err := json.Marshal(stateDoc{Version: stateVersion, Totals: totals})
	if err != nil {
		return err
	}
	b = append(b, '\n')
	f, err := os.CreateTemp(dir, stateFile+".tmp*")
	if err != nil {
		return fmt.Errorf("save counter totals: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, stateFile))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save counter totals: %w", err)
	}
	// The rename is durable only once the folder is synced.
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("save counter totals: sync %s: %w", dir, err)
		}
	}
	return nil
}
