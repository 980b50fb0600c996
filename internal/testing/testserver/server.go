package testserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	// startTimeout bounds how long a server may take to answer its first
	// request after it was started.
	startTimeout = 30 * time.Second
	// logTail is how much of a server's log is printed when a test fails.
	logTail = 64 << 10
)

// errExited reports a server process that ended before it answered.
var errExited = errors.New("exited before it answered")

// server is one server process behind its proxy. stop may be called from
// any goroutine; start and restart belong to the test's goroutine.
type server struct {
	name    string                                    // binary name, for messages
	bin     string                                    // path of the binary
	args    func(proxyAddr string, port int) []string // command line for a server on port
	env     []string                                  // the child's environment
	ready   func(ctx context.Context, base string) error
	logPath string
	proxy   *proxy

	buckets atomic.Int64 // names handed out by freshName

	mu     sync.Mutex
	cmd    *exec.Cmd     // nil while stopped
	exited chan struct{} // closed when cmd has been waited for
}

// startServer starts the named binary behind a new proxy, waits until ready
// succeeds through the proxy, and registers a cleanup that stops it and, if
// the test failed, logs the end of its output. It fails the test when the
// binary is missing or the server does not come up.
//
// args builds the command line for a server listening on 127.0.0.1:port that
// clients reach at proxyAddr. dropEnv lists prefixes of environment variables
// the server must not inherit (its own configuration variables), so the
// developer's environment cannot change how it runs.
func startServer(t testing.TB, name string, args func(proxyAddr string, port int) []string, ready func(ctx context.Context, base string) error, dropEnv ...string) *server {
	t.Helper()
	return startServerEnv(t, name, args, ready, nil, dropEnv...)
}

// startServerEnv is startServer with env added to the server's
// environment (after dropEnv is applied).
func startServerEnv(t testing.TB, name string, args func(proxyAddr string, port int) []string, ready func(ctx context.Context, base string) error, env []string, dropEnv ...string) *server {
	t.Helper()
	bin, err := findBinary(name)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newProxy()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{
		name:    name,
		bin:     bin,
		args:    args,
		env:     append(filterEnv(os.Environ(), dropEnv), env...),
		ready:   ready,
		logPath: filepath.Join(t.TempDir(), name+".log"),
		proxy:   p,
	}
	t.Cleanup(func() {
		s.stop()
		if t.Failed() {
			t.Logf("%s log (%s):\n%s", name, s.logPath, s.tail())
		}
	})
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// start runs the server on a free port and waits until it answers. A server
// that exits at once (most likely because another process took the port
// between freePort and its listen) is tried again on another port.
func (s *server) start() error {
	var err error
	for range 3 {
		err = s.startOnce()
		if err == nil || !errors.Is(err, errExited) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("testserver: start %s: %w; log:\n%s", s.name, err, s.tail())
	}
	return nil
}

func (s *server) startOnce() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	args := s.args(s.proxy.addr, port)
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close() // the child keeps its own descriptor
	fmt.Fprintf(logf, "=== %s %s\n", s.bin, strings.Join(args, " "))
	cmd := exec.Command(s.bin, args...)
	cmd.Env = s.env
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.proxy.setBackend(fmt.Sprintf("127.0.0.1:%d", port))
	err = s.proxy.reopen()
	if err == nil {
		err = s.waitReady(exited)
	}
	if err != nil {
		cmd.Process.Kill()
		<-exited
		return err
	}
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	return nil
}

// waitReady polls s.ready through the proxy until it succeeds, the process
// exits, or startTimeout passes.
func (s *server) waitReady(exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	base := "http://" + s.proxy.addr
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		// A process that died would make the proxy drop connections, which
		// the probe cannot tell from "not listening yet": check it first.
		select {
		case <-exited:
			return errExited
		default:
		}
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		err := s.ready(pctx, base)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errExited
		case <-ctx.Done():
			return fmt.Errorf("not answering after %v: %w", startTimeout, err)
		case <-tick.C:
		}
	}
}

// stop closes the proxy, so clients see refused connections, then kills the
// server and waits for it. It is idempotent.
func (s *server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proxy.close()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd, s.exited = nil, nil
}

// restart stops the server if it runs and starts it again with the same
// data, reachable at the same address.
func (s *server) restart(t testing.TB) {
	t.Helper()
	s.stop()
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
}

// freshName returns a bucket name not handed out before by this server.
func (s *server) freshName() string {
	return fmt.Sprintf("bucket-%d", s.buckets.Add(1))
}

// tail returns the last logTail bytes of the server's log.
func (s *server) tail() string {
	f, err := os.Open(s.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > logTail {
		f.Seek(fi.Size()-logTail, io.SeekStart)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(reading log: %v)", err)
	}
	return string(b)
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testserver: find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// filterEnv returns env without the variables whose names start with any of
// prefixes.
func filterEnv(env []string, prefixes []string) []string {
	var out []string
next:
	for _, kv := range env {
		for _, p := range prefixes {
			if strings.HasPrefix(kv, p) {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}

// probeClient makes readiness probes and setup requests. It keeps no idle
// connections, so none outlive the request in the proxy.
var probeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// answers is a readiness probe: GET base+path returns any HTTP response
// whose status is in want (any status when want is empty).
func answers(path string, want ...int) func(ctx context.Context, base string) error {
	return func(ctx context.Context, base string) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return err
		}
		resp, err := probeClient.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if len(want) == 0 {
			return nil
		}
		for _, w := range want {
			if resp.StatusCode == w {
				return nil
			}
		}
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
}
