package pulld

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/manifest"
)

// notifySocket listens where NOTIFY_SOCKET points for the rest of the test
// and returns the messages systemd would receive.
func notifySocket(t *testing.T) <-chan string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return msgs
}

func waitMessage(t *testing.T, msgs <-chan string, prefix string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case m := <-msgs:
			if strings.HasPrefix(m, prefix) {
				return
			}
		case <-deadline:
			t.Fatalf("no %q notification within 10s", prefix)
		}
	}
}

// TestServeSystemd checks the sd_notify conversation of daemon mode:
// READY=1 once serving, WATCHDOG=1 at half the watchdog interval while the
// loop is healthy, none while it is stalled, STOPPING=1 on shutdown; and
// that the final status is written.
func TestServeSystemd(t *testing.T) {
	msgs := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "100000") // 100 ms: pings every 50 ms
	t.Setenv("WATCHDOG_PID", "")
	d, _ := newTestDaemon(t)
	setManifest(t, d.store, entries(pkg(t, "a", 1))...)

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.serve(ctx) }()
	waitMessage(t, msgs, "READY=1")
	waitMessage(t, msgs, "WATCHDOG=1")

	// A stalled loop gets no pings.
	d.live.set(true, false)
	d.live.mu.Lock()
	d.live.since = time.Now().Add(-2 * stallLimit)
	d.live.mu.Unlock()
	time.Sleep(60 * time.Millisecond)
	for len(msgs) > 0 {
		<-msgs
	}
	select {
	case m := <-msgs:
		t.Fatalf("notification %q while stalled", m)
	case <-time.After(200 * time.Millisecond):
	}
	d.live.set(false, false)
	waitMessage(t, msgs, "WATCHDOG=1")

	cancel()
	waitMessage(t, msgs, "STOPPING=1")
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	st, err := d.store.ReadStatus(t.Context(), "web-1")
	if err != nil {
		t.Fatalf("no final status: %v", err)
	}
	if st.Server != "web-1" {
		t.Errorf("final status = %+v", st)
	}
}

// TestServeSelfUpdate checks that daemon mode returns nil (exit 0) after a
// cycle that updated pulld's own package, having finished the other envs.
func TestServeSelfUpdate(t *testing.T) {
	d, eng := newTestDaemon(t)
	self1, self2, a := pkg(t, "pulld", 1), pkg(t, "pulld", 2), pkg(t, "a", 3)
	eng.install(manifest.Entry{Package: self1})
	setManifest(t, d.store, entries(self2, a)...)
	done := make(chan error, 1)
	go func() { done <- d.serve(t.Context()) }()
	d.nudge("test")
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after self-update: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return after a self-update")
	}
	wantCalls(t, eng, "apply pulld "+self2.String(), "apply a "+a.String())
	st, err := d.store.ReadStatus(t.Context(), "web-1")
	if err != nil {
		t.Fatal(err)
	}
	if es, ok := st.Lookup("pulld"); !ok || es.Serving != self2.String() {
		t.Errorf("final status of pulld = %+v", es)
	}
}
