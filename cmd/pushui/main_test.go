package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/pushui/auth"
	"github.com/pushpull/pushpull/internal/testing/syncbuf"
	"github.com/pushpull/pushpull/manifest"
)

func writeFile(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestUsage checks that bad command lines exit 2 with a message, before
// anything is opened or listened on.
func TestUsage(t *testing.T) {
	conf := writeFile(t, "push.json", `{"servers": {"web-1": ["hello"]}}`)
	tests := []struct {
		name string
		args []string
		code int
		say  string
	}{
		{"no flags", nil, 2, "-bucket is required"},
		{"no config anywhere", []string{"-bucket", "mem://", "-addr", "127.0.0.1:0"}, 1, "no push config in the bucket (config/push.json): give -config FILE"},
		{"bucket directory missing", []string{"-bucket", "file:///nonexistent/typo", "-config", conf, "-addr", "127.0.0.1:0"}, 1, "directory /nonexistent/typo does not exist"},
		{"unknown flag", []string{"-nope"}, 2, "flag provided but not defined"},
		{"extra argument", []string{"-bucket", "mem://", "-config", conf, "extra"}, 2, "unexpected arguments"},
		{"all interfaces without auth", []string{"-bucket", "mem://", "-config", conf, "-addr", ":8000"}, 2, "refusing to listen on :8000 without authentication"},
		{"public address without auth", []string{"-bucket", "mem://", "-config", conf, "-addr", "192.0.2.1:8000"}, 2, "refusing to listen"},
		{"admins without auth", []string{"-bucket", "mem://", "-config", conf, "-admins", "alice"}, 2, "-admins needs"},
		{"two auth modes", []string{"-bucket", "mem://", "-config", conf, "-auth-header", "X-User", "-htpasswd", conf}, 2, "not several"},
		{"header off loopback without trusted proxy", []string{"-bucket", "mem://", "-config", conf, "-addr", "0.0.0.0:0", "-auth-header", "X-User"}, 2, "needs -trusted-proxy"},
		{"bad trusted proxy", []string{"-bucket", "mem://", "-auth-header", "X-User", "-trusted-proxy", "10.0.0.0/33"}, 2, "-trusted-proxy"},
		{"missing config file", []string{"-bucket", "mem://", "-config", "/nonexistent/push.json", "-addr", "127.0.0.1:0"}, 1, "read push config"},
		{"invalid config file", []string{"-bucket", "mem://", "-config", writeFile(t, "bad.json", `{"servers": {"Bad Name": []}}`), "-addr", "127.0.0.1:0"}, 1, "invalid name"},
		{"htpasswd without bcrypt", []string{"-bucket", "mem://", "-config", conf, "-htpasswd", writeFile(t, "htpasswd", "alice:plain\n"), "-addr", "127.0.0.1:0"}, 1, "not bcrypt"},
		{"bad nudge template", []string{"-bucket", "mem://", "-config", conf, "-nudge-url", "ftp://x/{server}", "-addr", "127.0.0.1:0"}, 1, "nudge"},
		{"help", []string{"-h"}, 0, "-auth-header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr syncbuf.Buffer
			if code := run(tt.args, strings.NewReader(""), io.Discard, &stderr); code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.say) {
				t.Errorf("stderr does not say %q:\n%s", tt.say, stderr.String())
			}
		})
	}
}

var listeningRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// serve runs the command in-process until the test stops it with SIGINT,
// and returns the address it listens on and a func that stops it and
// returns the exit code.
func serve(t *testing.T, args ...string) (string, func() int) {
	t.Helper()
	var stderr syncbuf.Buffer
	done := make(chan int, 1)
	go func() { done <- run(args, strings.NewReader(""), io.Discard, &stderr) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(stderr.String()); m != nil {
			return m[1], func() int {
				// run has installed its signal handler before it listens,
				// so this interrupts run, not the test.
				if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
					t.Fatal(err)
				}
				select {
				case code := <-done:
					if !strings.Contains(stderr.String(), "msg=stopped") {
						t.Errorf("no clean shutdown in the log:\n%s", stderr.String())
					}
					return code
				case <-time.After(30 * time.Second):
					t.Fatalf("pushui did not stop on SIGINT:\n%s", stderr.String())
					return -1
				}
			}
		}
		select {
		case code := <-done:
			t.Fatalf("pushui exited %d before listening:\n%s", code, stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("pushui did not listen:\n%s", stderr.String())
		}
	}
}

func fixtureBucket(t *testing.T) (string, manifest.PackageName) {
	t.Helper()
	dir := t.TempDir()
	ctx := context.Background()
	s, err := blobstore.Open(ctx, "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	p, _ := manifest.NewPackageName("hello", time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC), "0123456789abcdef", false, manifest.FormatZstd)
	w, err := s.NewPackageWriter(ctx, p, manifest.PackageMeta{App: "hello", Commit: "0123456789abcdef"})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(w, "tiny")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return "file://" + dir, p
}

// TestServe runs pushui for real: flags, bucket, config, the HTTP nudger
// and a clean shutdown on SIGINT.
func TestServe(t *testing.T) {
	bucket, pkg := fixtureBucket(t)
	conf := writeFile(t, "push.json", `{"servers": {"web-1": ["hello"]}, "groups": {"web": ["hello"]}}`)
	nudged := make(chan string, 4)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		nudged <- r.URL.Path
	}))
	defer sink.Close()

	addr, stop := serve(t, "-bucket", bucket, "-config", conf, "-addr", "127.0.0.1:0", "-refresh", "0", "-nudge-url", sink.URL+"/nudge/{server}")
	base := "http://" + addr
	for _, path := range []string{"/healthz", "/", "/servers/web-1/apps/hello", "/api/servers"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %s", path, resp.Status)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/api/deploy", strings.NewReader(`{"package": "`+pkg.String()+`", "servers": ["web-1"]}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("deploy: %s %s", resp.Status, body)
	}
	select {
	case path := <-nudged:
		if path != "/nudge/web-1" {
			t.Errorf("nudge went to %s", path)
		}
	case <-time.After(10 * time.Second):
		t.Error("no nudge arrived")
	}
	if code := stop(); code != 0 {
		t.Errorf("exit %d after SIGINT, want 0", code)
	}
}

// TestServeAuthenticated listens on every interface, which is allowed
// only with authentication, and checks that it is enforced.
func TestServeAuthenticated(t *testing.T) {
	bucket, _ := fixtureBucket(t)
	conf := writeFile(t, "push.json", `{"servers": {"web-1": ["hello"]}}`)
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	htpasswd := writeFile(t, "htpasswd", "alice:"+string(hash)+"\n")
	addr, stop := serve(t, "-bucket", bucket, "-config", conf, "-addr", "0.0.0.0:0", "-htpasswd", htpasswd, "-admins", "alice", "-refresh", "0")
	_, port, _ := strings.Cut(addr, "]:")
	if port == "" {
		_, port, _ = strings.Cut(addr, ":")
	}
	base := "http://127.0.0.1:" + port
	for _, c := range []struct {
		user, pw string
		code     int
	}{{"", "", http.StatusUnauthorized}, {"alice", "wrong", http.StatusUnauthorized}, {"alice", "pw", http.StatusOK}} {
		req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
		if c.user != "" {
			req.SetBasicAuth(c.user, c.pw)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("%s/%s: %s, want %d", c.user, c.pw, resp.Status, c.code)
		}
	}
	if code := stop(); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestHashPassword prints an htpasswd line from a password on stdin, which
// pushui's own -htpasswd reads; an empty password or a bad name is usage.
func TestHashPassword(t *testing.T) {
	var stdout, stderr strings.Builder
	if code := run([]string{"-hash-password", "alice"}, strings.NewReader("s3cret\n"), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	ht, err := auth.ParseHtpasswd([]byte(stdout.String()))
	if err != nil || !ht.Verify("alice", "s3cret") || ht.Verify("alice", "s3cret\n") {
		t.Errorf("the line %q does not verify alice's password: %v", stdout.String(), err)
	}
	if strings.Contains(stdout.String()+stderr.String(), "s3cret") {
		t.Errorf("the password was echoed")
	}
	for _, bad := range [][2]string{{"alice", "\n"}, {"al ice", "pw\n"}} {
		stderr.Reset()
		if code := run([]string{"-hash-password", bad[0]}, strings.NewReader(bad[1]), io.Discard, &stderr); code != 2 {
			t.Errorf("-hash-password %q with %q: exit %d, want 2 (%s)", bad[0], bad[1], code, stderr.String())
		}
	}
}
