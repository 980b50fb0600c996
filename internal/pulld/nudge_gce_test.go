package pulld_test

import (
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushpull/pushpull/internal/nudge"
	"github.com/pushpull/pushpull/internal/testing/computetest"
	"github.com/pushpull/pushpull/internal/testing/metadatatest"
	"github.com/pushpull/pushpull/internal/testing/syncbuf"
)

// gceNudgeLatency bounds the time from nudge.Nudger's GCE nudge returning
// to RESTARTING starting. It is loose on purpose (the machine may be busy):
// with a 1 h poll, only the nudge can explain a reconcile within it.
const gceNudgeLatency = 5 * time.Second

// TestNudgeGCEEndToEnd follows a GCE nudge the whole way: nudge.Nudger with
// the GCE form sets the instance metadata item pushrev through the Compute
// API (computetest), the instance's metadata server (metadatatest, which
// computetest mirrors the instance's items into) shows the new value, and
// pulld -nudge gce, polling only every hour, reconciles at once. The third
// push loses a race against another writer of the instance's metadata and
// still gets through; the other items of the instance are kept throughout.
func TestNudgeGCEEndToEnd(t *testing.T) {
	md := metadatatest.Start(t)
	md.Setenv(t)
	cs := computetest.Start(t)
	web1 := computetest.Instance{Project: "my-project", Zone: "us-central1-a", Name: "web-1"}
	cs.Add(web1, map[string]string{"startup-script": "#!/bin/sh\n", nudge.PushrevKey: "0"})
	cs.Mirror(web1, md)

	var races atomic.Int32 // setMetadata calls still to be raced
	cs.BeforeSetMetadata(func(in computetest.Instance) {
		if races.Add(-1) >= 0 {
			cs.SetItem(in, "other-tool", time.Now().String())
		}
	})

	logs := &syncbuf.Buffer{}
	n, err := nudge.New(t.Context(), nudge.Config{
		GCE:         web1.Project + "/" + web1.Zone,
		GCEEndpoint: cs.Endpoint,
		Logger:      slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Close(t.Context())
		if t.Failed() {
			t.Logf("nudger log:\n%s", logs.String())
		}
	})

	h := s3Harness(t)
	h.cfg.Nudge = []string{"gce"}
	var last string
	r := startRig(t, h, []string{"gce"}, func(t testing.TB) {
		t.Helper()
		if err := n.Nudge(t.Context(), "web-1"); err != nil {
			t.Fatalf("Nudge: %v", err)
		}
		items, _ := cs.Items(web1)
		if rev := items[nudge.PushrevKey]; rev == "" || rev == last {
			t.Fatalf("pushrev %q after the nudge, want a new value (was %q)", rev, last)
		} else {
			last = rev
		}
		if items["startup-script"] != "#!/bin/sh\n" {
			t.Fatalf("instance items %q: startup-script not kept", items)
		}
	})
	for i := 1; i <= 3; i++ {
		if i == 3 {
			races.Store(1)
		}
		time.Sleep(250 * time.Millisecond) // past pulld's nudge rate limit
		if d := r.push(t, i); d > gceNudgeLatency {
			t.Fatalf("push %d: RESTARTING %v after the GCE nudge, want within %v (poll is 1 h)", i, d, gceNudgeLatency)
		}
		r.settle(t, i+1)
	}
	items, _ := cs.Items(web1)
	if races.Load() >= 0 || items["other-tool"] == "" {
		t.Fatalf("the third push did not race another writer (races left %d, items %q)", races.Load(), items)
	}
}

// TestNudgeGCEGroupEndToEnd follows a group nudge by GCE: nudge.Nudger
// sets the project metadata item of group web through the Compute API,
// the instance's metadata server shows it under project/attributes/, and
// pulld -nudge gce in group web, polling only every hour, reconciles at
// once.
func TestNudgeGCEGroupEndToEnd(t *testing.T) {
	md := metadatatest.Start(t)
	md.Setenv(t)
	cs := computetest.Start(t)
	web1 := computetest.Instance{Project: "my-project", Zone: "us-central1-a", Name: "web-1"}
	cs.Add(web1, map[string]string{nudge.PushrevKey: "0"})
	cs.Mirror(web1, md)
	cs.AddProject("my-project", map[string]string{"ssh-keys": "alice:ssh-ed25519 AAAA alice"})
	cs.MirrorProject("my-project", md)
	n, err := nudge.New(t.Context(), nudge.Config{GCE: "my-project/us-central1-a", GCEEndpoint: cs.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(t.Context()) })

	h := s3Harness(t)
	h.cfg.Nudge = []string{"gce"}
	h.cfg.Groups = []string{"web"}
	r := startRig(t, h, []string{"gce", "gce-group-web"}, func(t testing.TB) {
		t.Helper()
		if err := n.NudgeGroup(t.Context(), "web", 1); err != nil {
			t.Fatalf("NudgeGroup: %v", err)
		}
	})
	for i := 1; i <= 2; i++ {
		time.Sleep(250 * time.Millisecond) // past pulld's nudge rate limit
		if d := r.push(t, i); d > gceNudgeLatency {
			t.Fatalf("push %d: RESTARTING %v after the group's GCE nudge, want within %v (poll is 1 h)", i, d, gceNudgeLatency)
		}
		r.settle(t, i+1)
	}
}
