// Package systemd_test checks the files that install the gateway as a
// service: the unit (systemd-analyze verify and security), install.sh in a
// throwaway root, and the .deb built by packaging/build.sh, installed,
// upgraded, removed and purged with dpkg in a throwaway root. packaging/
// is a module of its own (it pins nfpm as a Go tool), so its test lives
// here, where `go test ./...` from the repository root runs it.
package systemd_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

const unitName = "fieldbridge-gateway.service"

// repo is the repository root (go test runs in systemd/).
func repo(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// need fails the test when a command is missing, naming the Debian
// package that brings it.
func need(t *testing.T, cmd, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(cmd); err != nil {
		t.Fatalf("%s not found: install the Debian package %s (scripts/test.sh does)", cmd, pkg)
	}
}

// needRoot fails a test that must change file ownership when it cannot:
// a test that does not run would pass for nothing.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("needs root: installs files owned by root and by the service user into a throwaway root (CI runs as root)")
	}
}

// result is what a command did.
type result struct {
	code int
	out  string // stdout and stderr
}

// run runs name with args and extra environment, within a minute.
func run(t *testing.T, env []string, name string, args ...string) result {
	t.Helper()
	return runWithin(t, time.Minute, env, name, args...)
}

// runWithin runs name with args and extra environment, within limit.
func runWithin(t *testing.T, limit time.Duration, env []string, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		t.Fatalf("%s %s: still running after %s\n%s", name, strings.Join(args, " "), limit, out.String())
	}
	return result{code: cmd.ProcessState.ExitCode(), out: out.String()}
}

// mustRun runs a command that has to succeed.
func mustRun(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	r := run(t, env, name, args...)
	if r.code != 0 {
		t.Fatalf("%s %s: exit %d\n%s", name, strings.Join(args, " "), r.code, r.out)
	}
	return r.out
}

// newRoot makes a throwaway root that has the accounts every Debian system
// has (root, and the dialout group that owns serial ports).
func newRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	write(t, filepath.Join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/bash\n", 0o644)
	write(t, filepath.Join(root, "etc/group"), "root:x:0:\ndialout:x:20:\n", 0o644)
	return root
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// entry is one line of /etc/passwd or /etc/group, split at ':'.
func entry(t *testing.T, root, file, name string) []string {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "etc", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Split(sc.Text(), ":"); fields[0] == name {
			return fields
		}
	}
	return nil
}

// checkAccounts checks the service user and its groups in root.
func checkAccounts(t *testing.T, root string) (uid, gid string) {
	t.Helper()
	u := entry(t, root, "passwd", "fieldbridge")
	if u == nil {
		t.Fatalf("no user fieldbridge in %s/etc/passwd", root)
	}
	if u[5] != "/var/lib/fieldbridge" || u[6] != "/usr/sbin/nologin" {
		t.Errorf("user fieldbridge: home %q, shell %q; want /var/lib/fieldbridge, /usr/sbin/nologin", u[5], u[6])
	}
	g := entry(t, root, "group", "fieldbridge")
	if g == nil || g[2] != u[3] {
		t.Errorf("group fieldbridge %v is not the primary group of user fieldbridge %v", g, u)
	}
	for _, name := range []string{"dialout", "gpio"} {
		g := entry(t, root, "group", name)
		if g == nil || !strings.Contains(","+g[3]+",", ",fieldbridge,") {
			t.Errorf("group %s: %v; want fieldbridge as a member", name, g)
		}
	}
	return u[2], u[3]
}

// file describes a file in a root, for comparisons.
type file struct {
	mode     fs.FileMode
	uid, gid uint32
	size     int64
	mtime    int64
	sum      string // SHA-256 of a regular file, or a symlink's target
}

func (f file) String() string {
	return fmt.Sprintf("%v %d:%d %d bytes mtime %d %s", f.mode, f.uid, f.gid, f.size, f.mtime, f.sum)
}

// snapshot describes every file under root.
func snapshot(t *testing.T, root string) map[string]file {
	t.Helper()
	files := map[string]file{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		f := file{mode: info.Mode(), uid: st.Uid, gid: st.Gid, size: info.Size(), mtime: info.ModTime().UnixNano()}
		if d.IsDir() {
			// Its entries are compared one by one; a file created and
			// removed again (a lock) changes only its mtime.
			f.size, f.mtime = 0, 0
		}
		switch {
		case info.Mode()&fs.ModeSymlink != 0:
			f.sum, err = os.Readlink(path)
		case info.Mode().IsRegular():
			var b []byte
			b, err = os.ReadFile(path)
			f.sum = fmt.Sprintf("%x", sha256.Sum256(b))
		}
		rel, _ := filepath.Rel(root, path)
		files["/"+rel] = f
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// diff lists what differs between two snapshots.
func diff(a, b map[string]file) []string {
	var out []string
	for p, fa := range a {
		if fb, ok := b[p]; !ok {
			out = append(out, "removed "+p)
		} else if fa != fb {
			out = append(out, fmt.Sprintf("changed %s: %v -> %v", p, fa, fb))
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			out = append(out, "added "+p)
		}
	}
	sort.Strings(out)
	return out
}

// checkFile checks a file's mode, owner and, when want is not empty, content.
func checkFile(t *testing.T, root, path string, mode fs.FileMode, uid, gid uint32, want string) {
	t.Helper()
	info, err := os.Lstat(filepath.Join(root, path))
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	st := info.Sys().(*syscall.Stat_t)
	if info.Mode() != mode || st.Uid != uid || st.Gid != gid {
		t.Errorf("%s: %v %d:%d; want %v %d:%d", path, info.Mode(), st.Uid, st.Gid, mode, uid, gid)
	}
	if want != "" && info.Mode().IsRegular() {
		if got := read(t, filepath.Join(root, path)); got != want {
			t.Errorf("%s: content differs from its source", path)
		}
	}
}

// checkEnabled checks that the unit is enabled in root.
func checkEnabled(t *testing.T, root string) {
	t.Helper()
	link := filepath.Join(root, "etc/systemd/system/multi-user.target.wants", unitName)
	target, err := os.Readlink(link)
	if err != nil || target != "/usr/lib/systemd/system/"+unitName {
		t.Errorf("%s -> %q (%v); want a link to /usr/lib/systemd/system/%s", link, target, err, unitName)
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}
