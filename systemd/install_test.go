package systemd_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// installSh runs install.sh with args; a root other than / makes it
// create users with systemd-sysusers --root and enable the unit with
// systemctl --root, and start nothing.
func installSh(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return run(t, env, "sh", append([]string{"install.sh"}, args...)...)
}

// stubBinary stands for a release binary: install.sh only copies it when
// it installs into a root other than /.
func stubBinary(t *testing.T, version string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fieldbridge-gateway")
	write(t, path, "#!/bin/sh\necho fieldbridge gateway "+version+"\n", 0o755)
	return path
}

func atoi(t *testing.T, s string) uint32 {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return uint32(n)
}

// checkInstalled checks what install.sh leaves in root.
func checkInstalled(t *testing.T, root, binary string) {
	t.Helper()
	_, gid := checkAccounts(t, root)
	checkFile(t, root, "usr/bin/fieldbridge-gateway", 0o755, 0, 0, read(t, binary))
	checkFile(t, root, "usr/lib/systemd/system/"+unitName, 0o644, 0, 0, read(t, unitName))
	checkFile(t, root, "usr/lib/sysusers.d/fieldbridge-gateway.conf", 0o644, 0, 0, read(t, "sysusers.conf"))
	checkFile(t, root, "usr/lib/modules-load.d/fieldbridge-gateway.conf", 0o644, 0, 0, read(t, "modules-load.conf"))
	checkFile(t, root, "etc/udev/rules.d/60-fieldbridge-gpio.rules", 0o644, 0, 0, read(t, "60-fieldbridge-gpio.rules"))
	checkFile(t, root, "etc/fieldbridge", os.ModeDir|0o755, 0, 0, "")
	checkFile(t, root, "etc/fieldbridge/gateway.yaml", 0o640, 0, atoi(t, gid), read(t, "gateway.yaml"))
	checkEnabled(t, root)
}

func TestInstallScript(t *testing.T) {
	need(t, "systemd-sysusers", "systemd")
	need(t, "systemctl", "systemd")
	needRoot(t)

	t.Run("fresh, then again", func(t *testing.T) {
		root := newRoot(t)
		bin := stubBinary(t, "1.0.0")
		r := installSh(t, nil, "--root", root, bin)
		if r.code != 0 {
			t.Fatalf("install.sh: exit %d\n%s", r.code, r.out)
		}
		t.Logf("first run:\n%s", r.out)
		checkInstalled(t, root, bin)

		before := snapshot(t, root)
		r = installSh(t, nil, "--root", root, bin)
		if r.code != 0 {
			t.Fatalf("install.sh, second run: exit %d\n%s", r.code, r.out)
		}
		if d := diff(before, snapshot(t, root)); len(d) > 0 {
			t.Errorf("the second run changed files:\n%s", strings.Join(d, "\n"))
		}
		if strings.Contains(r.out, "installed") {
			t.Errorf("the second run says it installed something:\n%s", r.out)
		}
	})

	t.Run("DESTDIR", func(t *testing.T) {
		root := newRoot(t)
		bin := stubBinary(t, "1.0.0")
		mustRun(t, []string{"DESTDIR=" + root}, "sh", "install.sh", "--no-start", bin)
		checkInstalled(t, root, bin)
	})

	t.Run("keeps an existing configuration", func(t *testing.T) {
		root := newRoot(t)
		mine := "# mine\ngateway: {id: plant-a-gw1}\n"
		write(t, filepath.Join(root, "etc/fieldbridge/gateway.yaml"), mine, 0o600)
		installSh(t, nil, "--root", root, stubBinary(t, "1.0.0"))
		checkFile(t, root, "etc/fieldbridge/gateway.yaml", 0o600, 0, 0, mine)
	})

	t.Run("upgrade", func(t *testing.T) {
		root := newRoot(t)
		mustRun(t, nil, "sh", "install.sh", "--root", root, stubBinary(t, "1.0.0"))
		conf := filepath.Join(root, "etc/fieldbridge/gateway.yaml")
		edited := read(t, conf) + "# edited\n"
		write(t, conf, edited, 0o640)
		before := snapshot(t, root)
		newer := stubBinary(t, "1.1.0")
		out := mustRun(t, nil, "sh", "install.sh", "--root", root, newer)
		if strings.TrimSpace(out) != "installed /usr/bin/fieldbridge-gateway" {
			t.Errorf("the upgrade printed\n%s\nwant only the binary installed", out)
		}
		d := diff(before, snapshot(t, root))
		if len(d) != 1 || !strings.HasPrefix(d[0], "changed /usr/bin/fieldbridge-gateway:") {
			t.Errorf("the upgrade changed:\n%s\nwant only the binary", strings.Join(d, "\n"))
		}
		if read(t, conf) != edited {
			t.Error("the upgrade changed the configuration")
		}
		checkFile(t, root, "usr/bin/fieldbridge-gateway", 0o755, 0, 0, read(t, newer))
	})

	t.Run("system with a GPIO rule", func(t *testing.T) {
		root := newRoot(t)
		// As in Raspberry Pi OS.
		write(t, filepath.Join(root, "usr/lib/udev/rules.d/99-com.rules"),
			"SUBSYSTEM==\"gpio\", GROUP=\"gpio\", MODE=\"0660\"\n", 0o644)
		mustRun(t, nil, "sh", "install.sh", "--root", root, stubBinary(t, "1.0.0"))
		if rule := filepath.Join(root, "etc/udev/rules.d/60-fieldbridge-gpio.rules"); exists(rule) {
			t.Errorf("%s installed although the system has a rule for GPIO chips", rule)
		}
		checkAccounts(t, root)
	})

	t.Run("existing gpio group and user", func(t *testing.T) {
		root := newRoot(t)
		write(t, filepath.Join(root, "etc/group"), "root:x:0:\ndialout:x:20:\ngpio:x:993:pi\n", 0o644)
		mustRun(t, nil, "sh", "install.sh", "--root", root, stubBinary(t, "1.0.0"))
		checkAccounts(t, root)
		if g := entry(t, root, "group", "gpio"); g[2] != "993" || !strings.Contains(","+g[3]+",", ",pi,") {
			t.Errorf("group gpio: %v; want gid 993 and member pi kept", g)
		}
	})

	t.Run("usage errors", func(t *testing.T) {
		root := newRoot(t)
		notExec := filepath.Join(t.TempDir(), "fieldbridge-gateway")
		write(t, notExec, "x", 0o644)
		for name, c := range map[string]struct {
			args []string
			code int
			msg  string
		}{
			"no argument":    {[]string{"--root", root}, 2, "Usage"},
			"missing file":   {[]string{"--root", root, "/nonexistent"}, 1, "no such file"},
			"not executable": {[]string{"--root", root, notExec}, 1, "not executable"},
			"unknown option": {[]string{"--force", notExec}, 1, "unknown option"},
			"--root alone":   {[]string{"--root"}, 1, "needs a directory"},
		} {
			r := installSh(t, nil, c.args...)
			if r.code != c.code || !strings.Contains(r.out, c.msg) {
				t.Errorf("%s: exit %d, %q; want exit %d and %q", name, r.code, r.out, c.code, c.msg)
			}
		}
		if d := snapshot(t, root); len(d) != 4 { // root, etc, etc/passwd, etc/group
			t.Errorf("a failed run left files: %v", d)
		}
	})
}
