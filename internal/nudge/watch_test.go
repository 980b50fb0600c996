package nudge_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gocloud.dev/pubsub"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/nudge"
	"github.com/pushpull/pushpull/internal/testing/metadatatest"
	"github.com/pushpull/pushpull/internal/testing/natstest"
	"github.com/pushpull/pushpull/manifest"
)

// latency is how soon a nudge must follow its event (pulld acts
// within a second of a change: docs/design.md, "One deploy, end to end").
const latency = time.Second

// quiet is how long a test waits to conclude that no nudge is coming.
const quiet = 300 * time.Millisecond

// recorder collects nudges and readiness from a watch.
type recorder struct {
	nudges chan struct{}
	ready  chan struct{}
}

func newRecorder() *recorder {
	return &recorder{nudges: make(chan struct{}, 100), ready: make(chan struct{}, 100)}
}

func (r *recorder) hooks(t *testing.T) nudge.Hooks {
	return nudge.Hooks{
		Nudge:  func() { r.nudges <- struct{}{} },
		Ready:  func() { r.ready <- struct{}{} },
		Logger: testLogger(t),
	}
}

func (r *recorder) waitReady(t *testing.T) {
	t.Helper()
	select {
	case <-r.ready:
	case <-time.After(10 * time.Second):
		t.Fatal("watch not ready after 10s")
	}
}

// wantNudge fails unless a nudge arrives within latency.
func (r *recorder) wantNudge(t *testing.T, what string) {
	t.Helper()
	select {
	case <-r.nudges:
	case <-time.After(latency):
		t.Fatalf("%s: no nudge within %v", what, latency)
	}
}

// wantNone fails if a nudge arrives within quiet.
func (r *recorder) wantNone(t *testing.T, what string) {
	t.Helper()
	select {
	case <-r.nudges:
		t.Fatalf("%s: unexpected nudge", what)
	case <-time.After(quiet):
	}
}

// drain discards nudges until none has come for quiet: one write makes
// several file events, and on a loaded machine the last of them can come
// well after the first nudge.
func (r *recorder) drain() {
	for {
		select {
		case <-r.nudges:
		case <-time.After(quiet):
			return
		}
	}
}

// run starts fn in a goroutine and, at cleanup, cancels it and checks that it
// returned the context's error promptly.
func run(t *testing.T, fn func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("watch returned %v after cancel, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("watch did not return within 10s of cancel")
		}
	})
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

const pushrev = "instance/attributes/pushrev"

func TestGCE(t *testing.T) {
	md := metadatatest.Start(t)
	md.Setenv(t)
	md.Set(pushrev, "r1")
	md.Set("instance/attributes/other", "x")
	r := newRecorder()
	run(t, func(ctx context.Context) error { return nudge.WatchGCE(ctx, "pushrev", r.hooks(t)) })
	r.waitReady(t)
	r.wantNone(t, "value at start")

	md.Set(pushrev, "r2")
	r.wantNudge(t, "pushrev changed")
	md.Set("instance/attributes/other", "y")
	r.wantNone(t, "another attribute changed")
	md.Set(pushrev, "r3")
	r.wantNudge(t, "pushrev changed again")

	md.Delete(pushrev)
	r.wantNone(t, "pushrev deleted")
	md.Set(pushrev, "r4")
	r.wantNudge(t, "pushrev set again after delete")
	md.Set(pushrev, "r5")
	r.wantNudge(t, "pushrev changed after reappearing")
}

func TestGCEAbsentAtStart(t *testing.T) {
	md := metadatatest.Start(t)
	md.Setenv(t)
	md.Set("instance/attributes/other", "x")
	r := newRecorder()
	run(t, func(ctx context.Context) error { return nudge.WatchGCE(ctx, "pushrev", r.hooks(t)) })
	r.waitReady(t)
	r.wantNone(t, "absent at start")
	md.Set(pushrev, "first")
	r.wantNudge(t, "pushrev created")
	md.Set(pushrev, "second")
	r.wantNudge(t, "pushrev changed")
}

func TestGCEInvalidAttribute(t *testing.T) {
	for _, attr := range []string{"", "a/b", "x?y"} {
		t.Run(attr, func(t *testing.T) {
			err := nudge.WatchGCE(t.Context(), attr, nudge.Hooks{Nudge: func() {}})
			if err == nil {
				t.Fatalf("GCE(%q) = nil, want an error", attr)
			}
		})
	}
}

// TestGCEServerDown checks that a watch survives its metadata server
// refusing connections for a while and nudges once it is back.
func TestGCEServerDown(t *testing.T) {
	md := metadatatest.Start(t)
	md.Set(pushrev, "r1")
	t.Setenv("GCE_METADATA_HOST", "127.0.0.1:1") // nothing listens on port 1
	r := newRecorder()
	run(t, func(ctx context.Context) error { return nudge.WatchGCE(ctx, "pushrev", r.hooks(t)) })
	r.wantNone(t, "server unreachable")
	md.Setenv(t)
	r.waitReady(t) // reconnected after a backoff
	md.Set(pushrev, "r2")
	r.wantNudge(t, "pushrev changed after reconnect")
}

func TestPubSubMem(t *testing.T) {
	topic, err := pubsub.OpenTopic(t.Context(), "mem://pushpull-watch-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { topic.Shutdown(context.Background()) })
	r := newRecorder()
	run(t, func(ctx context.Context) error {
		return nudge.WatchPubSub(ctx, "mem://pushpull-watch-test", []string{"web-1", nudge.Address(manifest.Group("web"))}, r.hooks(t))
	})
	r.waitReady(t)
	send := func(body string) {
		t.Helper()
		if err := topic.Send(t.Context(), &pubsub.Message{Body: []byte(body)}); err != nil {
			t.Fatal(err)
		}
	}
	send("web-2")
	r.wantNone(t, "message for another server")
	send("web-1")
	r.wantNudge(t, "message for this server")
	send("web-1\n")
	r.wantNudge(t, "message with a trailing newline")
	send("web-10")
	r.wantNone(t, "message for a server with a longer name")
	send("group-web")
	r.wantNudge(t, "message for a group of this server")
	send("group-api")
	r.wantNone(t, "message for another group")
	send("web")
	r.wantNone(t, "message for a server named like the group")
	// A group nudge with a spread arrives within it, not necessarily at once.
	if err := topic.Send(t.Context(), &pubsub.Message{Body: []byte("group-web"), Metadata: map[string]string{nudge.SpreadKey: "300ms"}}); err != nil {
		t.Fatal(err)
	}
	r.wantNudge(t, "group message with a spread")
}

func TestPubSubNATS(t *testing.T) {
	for _, tc := range []struct{ name, subject, url string }{
		{"v2", "pushpull.nudge", "nats://pushpull.nudge?natsv2=true"},
		{"v1", "pushpull.nudge", "nats://pushpull.nudge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns := natstest.Start(t)
			t.Setenv("NATS_SERVER_URL", ns.URL)
			r := newRecorder()
			run(t, func(ctx context.Context) error { return nudge.WatchPubSub(ctx, tc.url, []string{"web-1"}, r.hooks(t)) })
			r.waitReady(t)
			ns.WaitInterest(t, tc.subject)
			topic := ns.OpenTopic(t, tc.url)
			for _, body := range []string{"web-2", "", "web-1x"} {
				if err := topic.Send(t.Context(), &pubsub.Message{Body: []byte(body)}); err != nil {
					t.Fatal(err)
				}
			}
			r.wantNone(t, "messages for other servers")
			if err := topic.Send(t.Context(), &pubsub.Message{Body: []byte("web-1")}); err != nil {
				t.Fatal(err)
			}
			r.wantNudge(t, "message for this server")
		})
	}
}

// TestPubSubNATSRestart checks that a subscription outlives its server: when
// the NATS server comes back on the same address, nudges arrive again.
func TestPubSubNATSRestart(t *testing.T) {
	ns := natstest.Start(t)
	t.Setenv("NATS_SERVER_URL", ns.URL)
	const subject, url = "pushpull.restart", "nats://pushpull.restart?natsv2=true"
	r := newRecorder()
	run(t, func(ctx context.Context) error { return nudge.WatchPubSub(ctx, url, []string{"web-1"}, r.hooks(t)) })
	r.waitReady(t)
	ns.WaitInterest(t, subject)
	ns.Restart(t)
	ns.WaitInterest(t, subject) // the client reconnected and subscribed again
	topic := ns.OpenTopic(t, url)
	r.drain()
	if err := topic.Send(t.Context(), &pubsub.Message{Body: []byte("web-1")}); err != nil {
		t.Fatal(err)
	}
	r.wantNudge(t, "message after server restart")
}

func TestCheckPubSubURL(t *testing.T) {
	for _, tc := range []struct {
		url string
		ok  bool
	}{
		{"mem://topic", true},
		{"nats://subject", true},
		{"nats://a.b.c?natsv2=true", true},
		{"nats://subject?natsv2", true},
		{"nats://pushpull.web-1?natsv2=true", true},
		{"nats://pushpull/web-1", true},
		{"nats://pushpull..web-1", false},
		{"nats://pushpull.web.", false},
		{"nats://.pushpull", false},
		{"nats://", false},
		{"nats://subject?queue=q", false},
		{"nats://subject?server=x", false},
		{"nope://x", false},
		{"no scheme", false},
		{"", false},
		{"://x", false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			err := nudge.CheckPubSubURL(tc.url)
			if (err == nil) != tc.ok {
				t.Fatalf("CheckPubSubURL(%q) = %v, want ok=%v", tc.url, err, tc.ok)
			}
		})
	}
}

func TestPubSubRefusesBadArguments(t *testing.T) {
	h := nudge.Hooks{Nudge: func() {}}
	if err := nudge.WatchPubSub(t.Context(), "mem://x", nil, h); err == nil {
		t.Error("PubSub with an empty server = nil, want an error")
	}
	if err := nudge.WatchPubSub(t.Context(), "nope://x", []string{"web-1"}, h); err == nil {
		t.Error("PubSub with an unknown scheme = nil, want an error")
	}
}

// TestPubSubRetriesOpen checks that a subscription that cannot be opened
// (its topic does not exist yet) is retried until it can.
func TestPubSubRetriesOpen(t *testing.T) {
	const url = "mem://pushpull-watch-late"
	r := newRecorder()
	run(t, func(ctx context.Context) error { return nudge.WatchPubSub(ctx, url, []string{"web-1"}, r.hooks(t)) })
	time.Sleep(100 * time.Millisecond)
	topic, err := pubsub.OpenTopic(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { topic.Shutdown(context.Background()) })
	r.waitReady(t)
	if err := topic.Send(t.Context(), &pubsub.Message{Body: []byte("web-1")}); err != nil {
		t.Fatal(err)
	}
	r.wantNudge(t, "message after a late topic")
}

func TestFile(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	store, err := blobstore.Open(ctx, "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	key, _ := blobstore.ManifestKey(manifest.Server("web-1"))
	path := filepath.Join(dir, filepath.FromSlash(key))
	r := newRecorder()
	run(t, func(ctx context.Context) error { return nudge.WatchFile(ctx, path, r.hooks(t)) })
	r.waitReady(t)
	if _, err := os.Stat(filepath.Dir(path)); err != nil {
		t.Fatalf("servers/ directory not created: %v", err)
	}

	p, err := manifest.ParsePackageName("hello/hello-20261122T101500Z-0123456789ab.tar.zst")
	if err != nil {
		t.Fatal(err)
	}
	u, err := store.UpdateManifestAt(ctx, manifest.Server("web-1"), "", false, blobstore.Replace(&manifest.Manifest{Packages: []manifest.Entry{{Package: p}}}))
	if err != nil {
		t.Fatal(err)
	}
	r.wantNudge(t, "manifest created")
	r.drain()
	if _, err := store.UpdateManifestAt(ctx, manifest.Server("web-2"), "", false, blobstore.Replace(&manifest.Manifest{})); err != nil {
		t.Fatal(err)
	}
	r.wantNone(t, "another server's manifest written")
	if _, err := store.UpdateManifestAt(ctx, manifest.Server("web-1"), u.Version, false, blobstore.Replace(&manifest.Manifest{Revision: 1})); err != nil {
		t.Fatal(err)
	}
	r.wantNudge(t, "manifest updated")
	r.drain()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	r.wantNudge(t, "manifest removed")
}

func TestFileRefusesBadPath(t *testing.T) {
	if err := nudge.WatchFile(t.Context(), "/", nudge.Hooks{Nudge: func() {}}); err == nil {
		t.Error(`File("/") = nil, want an error`)
	}
}
