package nudge_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/internal/nudge"
	"github.com/pushpull/pushpull/internal/testing/testserver"
	"github.com/pushpull/pushpull/manifest"
)

// TestGCPPubSub sends nudges through Google Cloud Pub/Sub (gcppubsub://, on
// the client library's pstest server) as a GCS fleet would set it up: a
// topic per address (pushpull-{server}: each server's and each group's),
// and each host its own subscription to its server's topic and to each of
// its groups' ({host}--{server}), since a Pub/Sub subscription hands each
// message to one subscriber. One message on the group's topic reaches every
// member; a server's message reaches that server only.
func TestGCPPubSub(t *testing.T) {
	ps := testserver.StartGCPPubSub(t)
	project := fmt.Sprintf("nudge-%d", time.Now().UnixNano())
	web := nudge.Address(manifest.Group("web"))
	for _, addr := range []string{"web-1", "web-2", web} {
		ps.Topic(t, project, "pushpull-"+addr)
	}
	type host struct {
		name string
		r    *recorder
	}
	var hosts []host
	for _, h := range []string{"web-1", "web-2"} {
		r := newRecorder()
		for _, addr := range []string{h, web} {
			sub := ps.Subscription(t, project, h+"--"+addr, "pushpull-"+addr)
			run(t, func(ctx context.Context) error { return nudge.WatchPubSub(ctx, sub, []string{addr}, r.hooks(t)) })
			r.waitReady(t)
		}
		hosts = append(hosts, host{h, r})
	}
	n, err := nudge.New(t.Context(), nudge.Config{Topic: "gcppubsub://projects/" + project + "/topics/pushpull-{server}"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(t.Context())

	if err := n.NudgeGroup(t.Context(), "web", 2); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		h.r.wantNudge(t, h.name+": the group's message")
	}
	if err := n.Nudge(t.Context(), "web-2"); err != nil {
		t.Fatal(err)
	}
	hosts[1].r.wantNudge(t, "web-2: its own message")
	hosts[0].r.wantNone(t, "web-1: web-2's message")
	if err := n.Nudge(t.Context(), "web-9"); err == nil || !strings.Contains(err.Error(), "web-9") {
		t.Errorf("nudge to a server without a topic = %v, want an error naming it", err)
	}
}
