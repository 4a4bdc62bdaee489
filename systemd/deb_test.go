package systemd_test

import (
	"debug/elf"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildDeb runs packaging/build.sh for amd64 and returns the package.
func buildDeb(t *testing.T, dist, version string) string {
	t.Helper()
	start := time.Now()
	// The first build on a machine also compiles nfpm and the gateway's
	// dependencies with -trimpath: minutes on two cores; later ones, seconds.
	r := runWithin(t, 10*time.Minute, []string{"ARCHES=amd64", "DIST=" + dist},
		"bash", filepath.Join(repo(t), "packaging/build.sh"), version)
	if r.code != 0 {
		t.Fatalf("packaging/build.sh %s: exit %d\n%s", version, r.code, r.out)
	}
	out := r.out
	t.Logf("packaging/build.sh %s: %s", version, time.Since(start).Round(100*time.Millisecond))
	deb := filepath.Join(dist, "fieldbridge-gateway_"+version+"_amd64.deb")
	if strings.TrimSpace(out) != deb {
		t.Fatalf("build.sh printed %q; want %q", out, deb)
	}
	return deb
}

// dpkg runs dpkg on a throwaway root. Maintainer scripts run outside a
// chroot with DPKG_ROOT set to root, and dpkg logs into the root.
func dpkg(t *testing.T, root string, args ...string) result {
	t.Helper()
	admin := filepath.Join(root, "var/lib/dpkg")
	for _, dir := range []string{"info", "updates"} {
		if err := os.MkdirAll(filepath.Join(admin, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"status", "available"} {
		if !exists(filepath.Join(admin, f)) {
			write(t, filepath.Join(admin, f), "", 0o644)
		}
	}
	if err := os.MkdirAll(filepath.Join(root, "var/log"), 0o755); err != nil {
		t.Fatal(err)
	}
	return run(t, nil, "dpkg", append([]string{
		"--root=" + root, "--log=" + filepath.Join(root, "var/log/dpkg.log"),
		"--force-script-chrootless", "--force-confold",
	}, args...)...)
}

func mustDpkg(t *testing.T, root string, args ...string) {
	t.Helper()
	if r := dpkg(t, root, args...); r.code != 0 {
		t.Fatalf("dpkg %s: exit %d\n%s", strings.Join(args, " "), r.code, r.out)
	}
}

// status is the package's dpkg status line in root, or "" when dpkg has
// no record of it.
func status(t *testing.T, root string) string {
	t.Helper()
	r := run(t, nil, "dpkg", "--root="+root, "--status", "fieldbridge-gateway")
	for _, line := range strings.Split(r.out, "\n") {
		if s, ok := strings.CutPrefix(line, "Status: "); ok {
			return s
		}
	}
	return ""
}

func TestDebPackage(t *testing.T) {
	need(t, "go", "golang")
	need(t, "dpkg-deb", "dpkg")
	start := time.Now()
	dist := t.TempDir()
	deb := buildDeb(t, dist, "1.0.0")

	t.Run("control", func(t *testing.T) {
		for field, want := range map[string]string{
			"Package": "fieldbridge-gateway", "Version": "1.0.0", "Architecture": "amd64", "Section": "net",
		} {
			if got := strings.TrimSpace(mustRun(t, nil, "dpkg-deb", "--field", deb, field)); got != want {
				t.Errorf("%s: %q; want %q", field, got, want)
			}
		}
		if got := mustRun(t, nil, "dpkg-deb", "--info", deb, "conffiles"); got != "/etc/fieldbridge/gateway.yaml\n" {
			t.Errorf("conffiles: %q; want only /etc/fieldbridge/gateway.yaml", got)
		}
		ctrl := mustRun(t, nil, "sh", "-c", `dpkg-deb --ctrl-tarfile "$0" | tar --numeric-owner -tvf -`, deb)
		modes := map[string]string{}
		for _, line := range strings.Split(ctrl, "\n") {
			if f := strings.Fields(line); len(f) >= 6 {
				modes[f[5]] = f[0] + " " + f[1]
			}
		}
		for _, script := range []string{"postinst", "prerm", "postrm"} {
			if got := modes["./"+script]; got != "-rwxr-xr-x 0/0" {
				t.Errorf("%s in the control archive: %q; want -rwxr-xr-x 0/0", script, got)
			}
		}
	})

	t.Run("contents", func(t *testing.T) {
		listing := map[string]string{} // path -> "mode owner"
		for _, line := range strings.Split(mustRun(t, nil, "dpkg-deb", "--contents", deb), "\n") {
			f := strings.Fields(line)
			if len(f) >= 6 {
				listing[strings.TrimPrefix(f[5], ".")] = f[0] + " " + f[1]
			}
		}
		for path, want := range map[string]string{
			"/usr/bin/fieldbridge-gateway":                             "-rwxr-xr-x root/root",
			"/usr/lib/systemd/system/" + unitName:                      "-rw-r--r-- root/root",
			"/usr/lib/sysusers.d/fieldbridge-gateway.conf":             "-rw-r--r-- root/root",
			"/usr/lib/modules-load.d/fieldbridge-gateway.conf":         "-rw-r--r-- root/root",
			"/usr/share/fieldbridge-gateway/60-fieldbridge-gpio.rules": "-rw-r--r-- root/root",
			"/etc/fieldbridge/gateway.yaml":                            "-rw-r--r-- root/root",
			"/usr/share/doc/fieldbridge-gateway/README.md":             "-rw-r--r-- root/root",
			"/usr/share/doc/fieldbridge-gateway/configuration.md":      "-rw-r--r-- root/root",
			"/usr/share/doc/fieldbridge-gateway/cloud-uplink.md":       "-rw-r--r-- root/root",
			"/usr/share/doc/fieldbridge-gateway/examples/unbatch.py":   "-rw-r--r-- root/root",
			"/usr/share/doc/fieldbridge-gateway/examples/aws-iot.yaml": "-rw-r--r-- root/root",
		} {
			if got := listing[path]; got != want {
				t.Errorf("%s: %q; want %q", path, got, want)
			}
		}
		x := t.TempDir()
		mustRun(t, nil, "dpkg-deb", "--extract", deb, x)
		for src, dst := range map[string]string{
			unitName:                    "usr/lib/systemd/system/" + unitName,
			"gateway.yaml":              "etc/fieldbridge/gateway.yaml",
			"sysusers.conf":             "usr/lib/sysusers.d/fieldbridge-gateway.conf",
			"60-fieldbridge-gpio.rules": "usr/share/fieldbridge-gateway/60-fieldbridge-gpio.rules",
		} {
			if read(t, src) != read(t, filepath.Join(x, dst)) {
				t.Errorf("/%s differs from systemd/%s", dst, src)
			}
		}

		// A static, stripped binary that knows its version and accepts the
		// default configuration.
		bin := filepath.Join(x, "usr/bin/fieldbridge-gateway")
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("the binary is dynamically linked; want CGO_ENABLED=0")
			}
		}
		if f.Section(".symtab") != nil {
			t.Error("the binary has a symbol table; want -ldflags '-s -w'")
		}
		f.Close()
		if v := mustRun(t, nil, bin, "version"); !strings.HasPrefix(v, "fieldbridge gateway 1.0.0 (commit ") || strings.Contains(v, "commit unknown") {
			t.Errorf("version: %q; want 1.0.0 and a commit", v)
		}
		conf := filepath.Join(x, "etc/fieldbridge/gateway.yaml")
		if r := run(t, nil, bin, "validate", "--config", conf); r.code != 0 {
			t.Errorf("the default configuration is invalid:\n%s", r.out)
		}
	})

	t.Run("install, upgrade, remove, purge", func(t *testing.T) {
		need(t, "dpkg", "dpkg")
		need(t, "systemd-sysusers", "systemd")
		need(t, "systemctl", "systemd")
		needRoot(t)
		root := newRoot(t)

		mustDpkg(t, root, "--install", deb)
		if s := status(t, root); s != "install ok installed" {
			t.Fatalf("status after install: %q", s)
		}
		_, gid := checkAccounts(t, root)
		checkFile(t, root, "etc/fieldbridge/gateway.yaml", 0o640, 0, atoi(t, gid), read(t, "gateway.yaml"))
		checkFile(t, root, "etc/udev/rules.d/60-fieldbridge-gpio.rules", 0o644, 0, 0, read(t, "60-fieldbridge-gpio.rules"))
		checkFile(t, root, "usr/bin/fieldbridge-gateway", 0o755, 0, 0, "")
		checkEnabled(t, root)
		if exists(filepath.Join(root, "var/lib/fieldbridge")) {
			t.Error("/var/lib/fieldbridge exists before the service ever ran: StateDirectory= makes it")
		}

		// What the service leaves behind, and an administrator's edit.
		write(t, filepath.Join(root, "var/lib/fieldbridge/buffers/cloud/00000000000000000001.seg"), "x", 0o640)
		conf := filepath.Join(root, "etc/fieldbridge/gateway.yaml")
		edited := read(t, conf) + "# edited\n"
		write(t, conf, edited, 0o640)
		write(t, filepath.Join(root, "etc/fieldbridge/gw.key"), "secret", 0o640)

		newer := buildDeb(t, dist, "1.0.1")
		mustDpkg(t, root, "--install", newer)
		if s := status(t, root); s != "install ok installed" {
			t.Fatalf("status after upgrade: %q", s)
		}
		if v := mustRun(t, nil, filepath.Join(root, "usr/bin/fieldbridge-gateway"), "version"); !strings.Contains(v, " 1.0.1 ") {
			t.Errorf("after the upgrade: %q; want 1.0.1", v)
		}
		if read(t, conf) != edited {
			t.Error("the upgrade replaced the edited configuration")
		}
		checkFile(t, root, "etc/fieldbridge/gateway.yaml", 0o640, 0, atoi(t, gid), "")
		checkAccounts(t, root)

		mustDpkg(t, root, "--remove", "fieldbridge-gateway")
		if s := status(t, root); s != "deinstall ok config-files" {
			t.Errorf("status after remove: %q", s)
		}
		for _, gone := range []string{"usr/bin/fieldbridge-gateway", "usr/lib/systemd/system/" + unitName, "usr/lib/sysusers.d/fieldbridge-gateway.conf"} {
			if exists(filepath.Join(root, gone)) {
				t.Errorf("/%s is still there after remove", gone)
			}
		}
		for _, kept := range []string{"etc/fieldbridge/gateway.yaml", "var/lib/fieldbridge/buffers/cloud/00000000000000000001.seg"} {
			if !exists(filepath.Join(root, kept)) {
				t.Errorf("/%s is gone after remove; only purge deletes it", kept)
			}
		}
		checkAccounts(t, root)

		mustDpkg(t, root, "--purge", "fieldbridge-gateway")
		if s := status(t, root); s != "" && s != "purge ok not-installed" {
			t.Errorf("status after purge: %q", s)
		}
		for _, gone := range []string{
			"var/lib/fieldbridge", "etc/fieldbridge/gateway.yaml", "etc/udev/rules.d/60-fieldbridge-gpio.rules",
			"etc/systemd/system/multi-user.target.wants/" + unitName,
		} {
			if exists(filepath.Join(root, gone)) {
				t.Errorf("/%s is still there after purge", gone)
			}
		}
		if !exists(filepath.Join(root, "etc/fieldbridge/gw.key")) {
			t.Error("purge deleted a file the administrator made")
		}
		if u := entry(t, root, "passwd", "fieldbridge"); u != nil {
			t.Errorf("user fieldbridge is still there after purge: %v", u)
		}
		if g := entry(t, root, "group", "fieldbridge"); g != nil {
			t.Errorf("group fieldbridge is still there after purge: %v", g)
		}
		if entry(t, root, "group", "gpio") == nil || entry(t, root, "group", "dialout") == nil {
			t.Error("purge deleted the gpio or dialout group")
		}
	})

	t.Run("install.sh with the package", func(t *testing.T) {
		need(t, "dpkg", "dpkg")
		need(t, "systemd-sysusers", "systemd")
		needRoot(t)
		root := newRoot(t)
		mustRun(t, nil, "sh", "install.sh", "--root", root, deb)
		if s := status(t, root); s != "install ok installed" {
			t.Fatalf("status: %q", s)
		}
		checkAccounts(t, root)
		checkEnabled(t, root)
		checkFile(t, root, "usr/bin/fieldbridge-gateway", 0o755, 0, 0, "")
	})
	t.Logf("TestDebPackage: %s", time.Since(start).Round(100*time.Millisecond))
}
