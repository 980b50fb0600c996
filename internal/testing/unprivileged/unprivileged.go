package unprivileged

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// Nobody is the user and group id Run runs tests as under root.
const Nobody = 65534

// unprivilegedEnv marks the child process Unprivileged starts.
const unprivilegedEnv = "DEPLOYTEST_UNPRIVILEGED"

// Run makes the test t run as a user whom permission bits bind.
// pulld need not run as root, and root ignores permission bits, so a test
// of how a build with read-only directories is unpacked, rendered or
// removed proves nothing when run as root, as it is in CI.
//
// When the test binary does not run as root, Run returns false
// and t goes on as it is. As root, it runs t (selected by its full name)
// again in a copy of the test binary, in a child process as user and group
// Nobody with no supplementary groups, with TMPDIR and HOME in a new
// directory that Nobody owns (so t.TempDir works); it fails t, with the
// child's output, unless t passed there, and returns true, after which the
// caller must return at once. The child gets the parent's working directory
// (the package's, which it must be able to enter) and environment
// otherwise, and -test.short when the parent has it.
//
// Call it first in the test, before t.TempDir, t.Setenv or t.Parallel.
func Run(t *testing.T) bool {
	t.Helper()
	if os.Geteuid() != 0 {
		return false
	}
	if os.Getenv(unprivilegedEnv) != "" {
		t.Fatalf("unprivileged: the child process for %s still runs as root", t.Name())
	}
	dir, err := os.MkdirTemp("", "unprivileged-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // as root, whatever modes the test left
	if err := os.Chown(dir, Nobody, Nobody); err != nil {
		t.Fatal(err)
	}
	// The test binary lies in a directory only root may enter.
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, filepath.Base(exe))
	if err := copyFile(bin, exe, 0o755); err != nil {
		t.Fatalf("unprivileged: copy the test binary: %v", err)
	}
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, Nobody, Nobody); err != nil {
		t.Fatal(err)
	}

	parts := strings.Split(t.Name(), "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	args := []string{"-test.run=" + strings.Join(parts, "/"), "-test.count=1", "-test.v"}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Dir = wd
	for _, kv := range os.Environ() {
		switch name, _, _ := strings.Cut(kv, "="); name {
		case "TMPDIR", "HOME", "GOCOVERDIR":
		default:
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "TMPDIR="+home, "HOME="+home, unprivilegedEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: Nobody, Gid: Nobody, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("--- PASS: "+t.Name()+" (")) {
		t.Fatalf("unprivileged: %s as uid %d: %v\n%s", t.Name(), Nobody, err, out)
	}
	t.Logf("%s passed as uid %d", t.Name(), Nobody)
	if testing.Verbose() {
		t.Logf("its output:\n%s", out)
	}
	return true
}

// copyFile copies the regular file src to the new file dst, with mode perm.
func copyFile(dst, src string, perm os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Chmod(perm); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// RemovableTree makes sure the cleanup of t can remove dir, made by
// t.TempDir, whoever runs the test: it registers a cleanup, to run before
// the removal, that gives every directory under dir mode 0700. A test that
// leaves directories read-only or unsearchable for a user other than root
// (see Unprivileged) calls it after t.TempDir.
func RemovableTree(t testing.TB, dir string) {
	t.Cleanup(func() {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			// Called for a directory before it is read, so reading it works.
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o700)
			}
			return nil
		})
	})
}
