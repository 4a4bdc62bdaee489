package gpio

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTotalsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, err := loadTotals(dir); !errors.Is(err, errNoState) {
		t.Fatalf("empty folder: %v", err)
	}
	want := map[string]uint64{"energy": 1<<64 - 1, "water": 42}
	if err := saveTotals(dir, want); err != nil {
		t.Fatal(err)
	}
	got, err := loadTotals(dir)
	if err != nil || len(got) != 2 || got["energy"] != want["energy"] || got["water"] != 42 {
		t.Fatalf("got %v, %v", got, err)
	}
	// No temporary file is left behind.
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != stateFile {
		t.Fatalf("folder holds %v", entries)
	}
}

func TestTotalsCorrupt(t *testing.T) {
	for name, content := range map[string]string{
		"garbage":   "\x00\x01not json",
		"truncated": `{"version":1,"totals":{"energy":12`,
		"version":   `{"version":7,"totals":{"energy":12}}`,
		"negative":  `{"version":1,"totals":{"energy":-1}}`,
		"no totals": `{"version":1}`,
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, stateFile)
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := loadTotals(dir)
			if err == nil || errors.Is(err, errNoState) || got != nil {
				t.Fatalf("got %v, %v", got, err)
			}
			if !strings.Contains(err.Error(), "corrupt") {
				t.Errorf("error %q does not say corrupt", err)
			}
			// Kept aside for whoever investigates; the next save starts clean.
			if b, err := os.ReadFile(path + ".corrupt"); err != nil || string(b) != content {
				t.Errorf("corrupt file not kept: %q %v", b, err)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("corrupt file still in place: %v", err)
			}
		})
	}
}

func TestTotalsSaveError(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing")
	if err := saveTotals(dir, map[string]uint64{"a": 1}); err == nil {
		t.Fatal("saved into a folder that does not exist")
	}
}
