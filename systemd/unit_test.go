package systemd_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// verifyRoot makes a throwaway root in which systemd-analyze can load the
// unit offline: the host's standard units (the unit's dependencies), the
// commands it runs, and the unit. No systemd needs to run, and nothing of
// the host is changed.
func verifyRoot(t *testing.T, unit string) string {
	t.Helper()
	root := t.TempDir()
	units := ""
	for _, dir := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
		if _, err := os.Stat(filepath.Join(dir, "multi-user.target")); err == nil {
			units = dir
			break
		}
	}
	if units == "" {
		t.Fatal("no multi-user.target in /usr/lib/systemd/system: install the Debian package systemd")
	}
	dst := filepath.Join(root, "usr/lib/systemd")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	mustRun(t, nil, "cp", "-a", units, dst)
	// ExecStart must be an executable file; ExecReload's kill comes from the host.
	write(t, filepath.Join(root, "usr/bin/fieldbridge-gateway"), "#!/bin/sh\n", 0o755)
	kill, err := exec.LookPath("kill")
	if err != nil {
		kill = "/bin/kill"
	}
	mustRun(t, nil, "mkdir", "-p", filepath.Join(root, "bin"))
	mustRun(t, nil, "cp", kill, filepath.Join(root, "bin/kill"))
	write(t, filepath.Join(root, "usr/lib/systemd/system", unitName), unit, 0o644)
	return root
}

// verify runs systemd-analyze verify on the unit inside root. It prints
// nothing for a unit without problems: any output is a failure, since a
// misspelt key or a bad value is only a warning (exit status 0) there.
func verify(t *testing.T, root string) result {
	t.Helper()
	return run(t, nil, "systemd-analyze", "verify", "--root="+root, unitName)
}

func TestUnitVerify(t *testing.T) {
	need(t, "systemd-analyze", "systemd")
	unit := read(t, unitName)
	r := verify(t, verifyRoot(t, unit))
	if r.code != 0 || r.out != "" {
		t.Fatalf("systemd-analyze verify %s: exit %d\n%s", unitName, r.code, r.out)
	}
}

// TestUnitVerifyCatchesMistakes makes sure that the check above would see
// the mistakes verify reports only as warnings.
func TestUnitVerifyCatchesMistakes(t *testing.T) {
	need(t, "systemd-analyze", "systemd")
	unit := read(t, unitName)
	for name, edit := range map[string][2]string{
		"unknown key":    {"WatchdogSec=30", "WatchdogSec=30\nWatchDogSec=30"},
		"bad device":     {"DeviceAllow=char-ttyUSB rw", "DeviceAllow=ttyUSB rw"},
		"bad value":      {"RestartSec=2", "RestartSec=two"},
		"missing binary": {"ExecStart=/usr/bin/fieldbridge-gateway", "ExecStart=/usr/bin/fieldbridge-gatewa"},
	} {
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(unit, edit[0]) {
				t.Fatalf("the unit has no %q", edit[0])
			}
			r := verify(t, verifyRoot(t, strings.Replace(unit, edit[0], edit[1], 1)))
			if r.code == 0 && r.out == "" {
				t.Errorf("verify said nothing about %s", name)
			}
		})
	}
}

// TestUnitSecurity keeps the hardening from eroding: systemd-analyze
// security scores the unit's exposure from 0 (locked down) to 10.
func TestUnitSecurity(t *testing.T) {
	need(t, "systemd-analyze", "systemd")
	root := verifyRoot(t, read(t, unitName))
	r := run(t, nil, "systemd-analyze", "security", "--offline=yes", "--root="+root, "--threshold=40", "--no-pager", unitName)
	lines := strings.Split(strings.TrimSpace(r.out), "\n")
	summary := lines[len(lines)-1]
	t.Log(summary)
	if r.code != 0 {
		t.Fatalf("exposure above 4.0:\n%s", r.out)
	}
}

// TestUnitDirectives pins what the gateway relies on, which verify cannot
// know: a unit that verifies can still break sd_notify or the serial ports.
func TestUnitDirectives(t *testing.T) {
	got := map[string][]string{}
	for _, line := range strings.Split(read(t, unitName), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, _ := strings.Cut(line, "=")
		got[k] = append(got[k], v)
	}
	want := map[string][]string{
		"Type":                    {"notify"},
		"NotifyAccess":            {"main"},
		"WatchdogSec":             {"30"},
		"ExecStart":               {"/usr/bin/fieldbridge-gateway run --config /etc/fieldbridge/gateway.yaml"},
		"ExecReload":              {"/bin/kill -HUP $MAINPID"},
		"Restart":                 {"on-failure"},
		"RestartSec":              {"2"},
		"User":                    {"fieldbridge"},
		"SupplementaryGroups":     {"dialout gpio"},
		"StateDirectory":          {"fieldbridge"},
		"ConfigurationDirectory":  {"fieldbridge"},
		"LimitNOFILE":             {"4096"},
		"NoNewPrivileges":         {"yes"},
		"ProtectSystem":           {"strict"},
		"ProtectHome":             {"yes"},
		"PrivateTmp":              {"yes"},
		"ProtectKernelTunables":   {"yes"},
		"ProtectKernelModules":    {"yes"},
		"ProtectControlGroups":    {"yes"},
		"RestrictAddressFamilies": {"AF_UNIX AF_INET AF_INET6"},
		"CapabilityBoundingSet":   {""},
		"AmbientCapabilities":     {""},
		"DevicePolicy":            {"closed"},
		"DeviceAllow": {
			"char-ttyUSB rw", "char-ttyACM rw", "char-ttyAMA rw", "char-ttyS rw", "char-gpiochip rw",
		},
		"WantedBy": {"multi-user.target"},
	}
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			t.Errorf("%s=%q; want %q", k, got[k], w)
		}
	}
	// A ReadWritePaths would open more than the state directory.
	if v, ok := got["ReadWritePaths"]; ok {
		t.Errorf("ReadWritePaths=%q: data_dir is the StateDirectory, nothing else is written", v)
	}
}
