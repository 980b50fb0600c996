package testserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/gcsblob"
	_ "gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"
)

// bucketServer is what StartGCS and StartS3 have in common.
type bucketServer interface {
	Bucket(t testing.TB, name string) string
	Env() []string
	Setenv(t testing.TB)
	BytesSent() int64
	Stop()
	Restart(t testing.TB)
}

var servers = []struct {
	name  string
	start func(t testing.TB) (bucketServer, string) // the server and the address clients dial
}{
	{"gcs", func(t testing.TB) (bucketServer, string) { g := StartGCS(t); return g, g.Host }},
	{"s3", func(t testing.TB) (bucketServer, string) {
		s := StartS3(t)
		return s, strings.TrimPrefix(s.Endpoint, "http://")
	}},
}

// TestServers starts each server, writes and reads through gocloud's
// default URL mux, checks the byte counter, kills and restarts the server,
// and checks that the cleanup stopped it.
func TestServers(t *testing.T) {
	for _, tc := range servers {
		t.Run(tc.name, func(t *testing.T) {
			var addr string
			t.Run("lifecycle", func(t *testing.T) {
				var srv bucketServer
				srv, addr = tc.start(t)
				srv.Setenv(t)
				url := srv.Bucket(t, "roundtrip")
				testLifecycle(t, srv, url)
			})
			if addr == "" {
				return // the server did not start; the subtest said why
			}
			// The subtest's cleanup has run: nothing may answer any more.
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				t.Fatalf("%s still accepts connections after the test ended", addr)
			} else if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("dial %s after the test ended: %v; want connection refused", addr, err)
			}
		})
	}
}

func testLifecycle(t *testing.T, srv bucketServer, url string) {
	ctx := t.Context()
	b, err := blob.OpenBucket(ctx, url)
	if err != nil {
		t.Fatalf("OpenBucket(%q): %v", url, err)
	}
	defer b.Close()

	data := bytes.Repeat([]byte("pushpull"), 128<<10) // 1 MiB
	if err := b.WriteAll(ctx, "packages/a/b.tar.zst", data, nil); err != nil {
		t.Fatalf("WriteAll: %v", err)
	}
	before := srv.BytesSent()
	got, err := b.ReadAll(ctx, "packages/a/b.tar.zst")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("ReadAll = %d bytes, %v; want the %d bytes written", len(got), err, len(data))
	}
	if sent := srv.BytesSent() - before; sent < int64(len(data)) || sent > int64(len(data))+64<<10 {
		t.Errorf("BytesSent grew by %d reading a %d-byte object", sent, len(data))
	}
	if _, err := b.ReadAll(ctx, "packages/a/missing"); gcerrors.Code(err) != gcerrors.NotFound {
		t.Fatalf("ReadAll(missing) = %v (%v); want NotFound", err, gcerrors.Code(err))
	}

	srv.Stop()
	srv.Stop() // idempotent
	sctx, cancel := context.WithTimeout(ctx, time.Second)
	_, err = b.ReadAll(sctx, "packages/a/b.tar.zst")
	cancel()
	if err == nil {
		t.Fatal("ReadAll succeeded from a stopped server")
	}

	srv.Restart(t)
	got, err = b.ReadAll(ctx, "packages/a/b.tar.zst")
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after Restart, ReadAll = %d bytes, %v; want the %d bytes written before", len(got), err, len(data))
	}
}

// TestEnv proves Env is all a child process needs: the child starts from an
// environment with no emulator or AWS settings, adds Env, and reads through
// the bucket URL.
func TestEnv(t *testing.T) {
	for _, tc := range servers {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := tc.start(t)
			url := srv.Bucket(t, "child")
			srv.Setenv(t) // for the write below only
			b, err := blob.OpenBucket(t.Context(), url)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if err := b.WriteAll(t.Context(), "hello.txt", []byte("hello from "+tc.name), nil); err != nil {
				t.Fatal(err)
			}

			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestChildRead$")
			cmd.Env = append(filterEnv(os.Environ(), []string{"STORAGE_EMULATOR_HOST", "AWS_"}), srv.Env()...)
			cmd.Env = append(cmd.Env, "TESTSERVER_CHILD_URL="+url)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if want := "content: hello from " + tc.name + "\n"; !strings.Contains(string(out), want) {
				t.Fatalf("child output does not contain %q:\n%s", want, out)
			}
		})
	}
}

// TestChildRead is the child process of TestEnv; it does nothing in a
// normal run.
func TestChildRead(t *testing.T) {
	url := os.Getenv("TESTSERVER_CHILD_URL")
	if url == "" {
		return
	}
	b, err := blob.OpenBucket(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	data, err := b.ReadAll(t.Context(), "hello.txt")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("content: %s\n", data)
}

func TestFindBinary(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "testing", "testserver", "doc.go")); err != nil {
		t.Fatalf("moduleRoot() = %s, which does not hold this package: %v", root, err)
	}

	t.Setenv("PATH", t.TempDir())
	_, err = findBinary("pushpull-no-such-server")
	if err == nil || !strings.Contains(err.Error(), "make tools") {
		t.Fatalf("findBinary(missing) error = %v; want one that says to run make tools", err)
	}

	onPath := t.TempDir()
	t.Setenv("PATH", onPath)
	exe := filepath.Join(onPath, "pushpull-test-server")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := findBinary("pushpull-test-server"); err != nil || got != exe {
		t.Fatalf("findBinary(on PATH) = %q, %v; want %q", got, err, exe)
	}
}

// TestStartExited proves a server that dies at once is tried on three ports
// and then reported with its log, rather than waited for.
func TestStartExited(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "dies")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho \"boom on port $1\"\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := newProxy()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{
		name:    "dies",
		bin:     bin,
		args:    func(_ string, port int) []string { return []string{fmt.Sprint(port)} },
		ready:   answers("/"),
		logPath: filepath.Join(dir, "dies.log"),
		proxy:   p,
	}
	defer s.stop()
	start := time.Now()
	err = s.start()
	if !errors.Is(err, errExited) || !strings.Contains(err.Error(), "boom on port") {
		t.Fatalf("start() = %v; want errExited with the log", err)
	}
	if n := strings.Count(s.tail(), "boom on port"); n != 3 {
		t.Errorf("server was started %d times, want 3:\n%s", n, s.tail())
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("start() took %v to notice the server had exited", d)
	}
}

// TestFreshBuckets proves Bucket("") creates distinct buckets.
func TestFreshBuckets(t *testing.T) {
	for _, tc := range servers {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := tc.start(t)
			srv.Setenv(t)
			urls := []string{srv.Bucket(t, ""), srv.Bucket(t, "")}
			if urls[0] == urls[1] {
				t.Fatalf("Bucket(\"\") returned %q twice", urls[0])
			}
			for i, url := range urls {
				b, err := blob.OpenBucket(t.Context(), url)
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				if err := b.WriteAll(t.Context(), "k", []byte(url), nil); err != nil {
					t.Fatalf("bucket %d: %v", i, err)
				}
			}
			for _, url := range urls {
				b, err := blob.OpenBucket(t.Context(), url)
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				if got, err := b.ReadAll(t.Context(), "k"); err != nil || string(got) != url {
					t.Fatalf("%s: ReadAll(k) = %q, %v; want %q", url, got, err, url)
				}
			}
		})
	}
}
