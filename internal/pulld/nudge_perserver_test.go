package pulld_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"gocloud.dev/pubsub"
	_ "gocloud.dev/pubsub/mempubsub"

	"github.com/pushpull/pushpull/internal/testing/pulldtest"
)

// TestNudgePerServerTopic runs pulld for web-1 with the nudge source
// mem://…-{server} and checks that it subscribed to web-1's own topic, the
// template expanded with its server name: a message on web-2's topic, even
// one whose body is web-1, does not nudge it, while one on web-1's topic
// reaches RESTARTING within a second (poll period 1 h).
func TestNudgePerServerTopic(t *testing.T) {
	base := fmt.Sprintf("mem://pulld-per-server-%d", time.Now().UnixNano())
	topics := map[string]*pubsub.Topic{}
	for _, server := range []string{"web-1", "web-2"} {
		// A mem:// topic must exist before a subscription to it can be
		// opened, as a NATS subject needs no creation.
		topic, err := pubsub.OpenTopic(t.Context(), base+"-"+server)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { topic.Shutdown(context.Background()) })
		topics[server] = topic
	}
	// send publishes the nudge of web-1 (body web-1) on server's topic.
	send := func(t testing.TB, server string) {
		t.Helper()
		if err := topics[server].Send(t.Context(), &pubsub.Message{Body: []byte("web-1")}); err != nil {
			t.Fatal(err)
		}
	}
	h := s3Harness(t)
	h.cfg.Nudge = []string{base + "-{server}"}
	r := startRig(t, h, []string{"pubsub-mem"}, func(t testing.TB) { send(t, "web-1") })

	time.Sleep(250 * time.Millisecond) // past the nudge rate limit
	pulldtest.SetManifest(t, h.store, "web-1", r.entry("1"))
	send(t, "web-2")
	quiet := time.After(2 * nudgeLatency)
	for waiting := true; waiting; {
		select {
		case l := <-r.fifo.lines:
			if strings.HasSuffix(l.text, "restart-1") {
				t.Fatalf("a message on web-2's topic nudged web-1's pulld (RESTARTING %q)", l.text)
			}
		case <-quiet:
			waiting = false
		}
	}

	sent := time.Now()
	send(t, "web-1")
	if d := r.fifo.next(t, "restart-1").Sub(sent); d > nudgeLatency {
		t.Fatalf("RESTARTING %v after the nudge on web-1's topic, want within %v", d, nudgeLatency)
	}
	r.settle(t, 2)
}

// TestNudgeGroupTopic runs pulld for web-1 in group web with the nudge
// source mem://…-{server}: it subscribes to its own topic and to the
// group's (the template expanded with group-web), so one message on the
// group's topic reaches every member within a second; another group's
// topic does not.
func TestNudgeGroupTopic(t *testing.T) {
	base := fmt.Sprintf("mem://pulld-group-topic-%d", time.Now().UnixNano())
	topics := map[string]*pubsub.Topic{}
	for _, addr := range []string{"web-1", "group-web", "group-api"} {
		topic, err := pubsub.OpenTopic(t.Context(), base+"-"+addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { topic.Shutdown(context.Background()) })
		topics[addr] = topic
	}
	send := func(t testing.TB, addr string) {
		t.Helper()
		if err := topics[addr].Send(t.Context(), &pubsub.Message{Body: []byte(addr)}); err != nil {
			t.Fatal(err)
		}
	}
	h := s3Harness(t)
	h.cfg.Nudge = []string{base + "-{server}"}
	h.cfg.Groups = []string{"web"}
	r := startRig(t, h, []string{"pubsub-mem", "pubsub-mem-group-web"}, func(t testing.TB) { send(t, "web-1") })

	time.Sleep(250 * time.Millisecond) // past the nudge rate limit
	pulldtest.SetManifest(t, h.store, "web-1", r.entry("1"))
	send(t, "group-api")
	quiet := time.After(2 * nudgeLatency)
	for waiting := true; waiting; {
		select {
		case l := <-r.fifo.lines:
			if strings.HasSuffix(l.text, "restart-1") {
				t.Fatalf("a message on another group's topic nudged web-1's pulld (RESTARTING %q)", l.text)
			}
		case <-quiet:
			waiting = false
		}
	}
	sent := time.Now()
	send(t, "group-web")
	if d := r.fifo.next(t, "restart-1").Sub(sent); d > nudgeLatency {
		t.Fatalf("RESTARTING %v after the nudge on the group's topic, want within %v", d, nudgeLatency)
	}
	r.settle(t, 2)
}
