package nudge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"gocloud.dev/pubsub"
)

// uniqueMemTopic returns a mem:// topic URL no other test uses: mempubsub
// keeps topics in a process-wide table.
func uniqueMemTopic(t *testing.T) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "mem://nudge-" + hex.EncodeToString(b[:])
}

// receiveBodies receives n messages from sub and returns their bodies, sorted.
func receiveBodies(t *testing.T, sub *pubsub.Subscription, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var got []string
	for range n {
		m, err := sub.Receive(ctx)
		if err != nil {
			t.Fatalf("receive after %v: %v", got, err)
		}
		m.Ack()
		got = append(got, string(m.Body))
	}
	slices.Sort(got)
	return got
}

func TestNudgePubSubMem(t *testing.T) {
	topicURL := uniqueMemTopic(t)
	// The topic must exist before a subscription to it can be opened.
	topic, err := pubsub.OpenTopic(t.Context(), topicURL)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := pubsub.OpenSubscription(t.Context(), topicURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Shutdown(context.Background()); topic.Shutdown(context.Background()) })

	n, err := New(t.Context(), Config{Topic: topicURL})
	if err != nil {
		t.Fatal(err)
	}
	if !n.Enabled() {
		t.Fatal("Enabled() = false with a topic")
	}
	if err := n.Nudge(t.Context(), "web-1", "web-2"); err != nil {
		t.Fatalf("Nudge: %v", err)
	}
	if got, want := receiveBodies(t, sub, 2), []string{"web-1", "web-2"}; !slices.Equal(got, want) {
		t.Fatalf("message bodies = %q, want %q", got, want)
	}
	if err := n.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := n.Close(t.Context()); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestNudgePubSubNATS nudges through a real NATS server (embedded), with the
// nats:// driver pulld subscribes with.
func TestNudgePubSubNATS(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS server not ready")
	}
	t.Setenv("NATS_SERVER_URL", ns.ClientURL())

	sub, err := pubsub.OpenSubscription(t.Context(), "nats://pushpull.nudge")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Shutdown(context.Background()) })

	n, err := New(t.Context(), Config{Topic: "nats://pushpull.nudge"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	if err := n.Nudge(t.Context(), "db-1", "web-1"); err != nil {
		t.Fatalf("Nudge: %v", err)
	}
	if got, want := receiveBodies(t, sub, 2), []string{"db-1", "web-1"}; !slices.Equal(got, want) {
		t.Fatalf("message bodies = %q, want %q", got, want)
	}
}

type hit struct{ method, path, body, contentType string }

// recorder is an HTTP server that records every request and answers
// status(path).
func recorder(t *testing.T, status func(path string) int) (*httptest.Server, func() []hit) {
	var (
		mu   sync.Mutex
		hits []hit
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hits = append(hits, hit{r.Method, r.URL.Path, string(b), r.Header.Get("Content-Type")})
		mu.Unlock()
		w.WriteHeader(status(r.URL.Path))
	}))
	t.Cleanup(srv.Close)
	return srv, func() []hit {
		mu.Lock()
		defer mu.Unlock()
		out := slices.Clone(hits)
		slices.SortFunc(out, func(a, b hit) int { return strings.Compare(a.path, b.path) })
		return out
	}
}

func TestNudgeHTTP(t *testing.T) {
	srv, hits := recorder(t, func(path string) int {
		if strings.Contains(path, "broken") {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	var logs strings.Builder
	n, err := New(t.Context(), Config{
		URL:    srv.URL + "/nudge/{server}",
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(t.Context())

	err = n.Nudge(t.Context(), "web-1", "broken-1", "../etc", "web-2")
	if err == nil {
		t.Fatal("Nudge succeeded although one server answered 500 and one name is invalid")
	}
	for _, want := range []string{"broken-1", "500", `"../etc"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "web-1") || strings.Contains(err.Error(), "web-2") {
		t.Errorf("error %q blames a server that was nudged", err)
	}
	want := []hit{
		{"POST", "/nudge/broken-1", "broken-1", "text/plain; charset=utf-8"},
		{"POST", "/nudge/web-1", "web-1", "text/plain; charset=utf-8"},
		{"POST", "/nudge/web-2", "web-2", "text/plain; charset=utf-8"},
	}
	if got := hits(); !slices.Equal(got, want) {
		t.Fatalf("requests = %+v, want %+v (the invalid name must never reach the URL)", got, want)
	}
	if !strings.Contains(logs.String(), "nudge failed") || !strings.Contains(logs.String(), "server=broken-1") {
		t.Errorf("failure not logged:\n%s", logs.String())
	}
}

// TestNudgeBothForms checks that a Nudger configured with a topic and a URL
// nudges by both.
func TestNudgeBothForms(t *testing.T) {
	topicURL := uniqueMemTopic(t)
	topic, err := pubsub.OpenTopic(t.Context(), topicURL)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := pubsub.OpenSubscription(t.Context(), topicURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Shutdown(context.Background()); topic.Shutdown(context.Background()) })
	srv, hits := recorder(t, func(string) int { return http.StatusOK })

	n, err := New(t.Context(), Config{Topic: topicURL, URL: srv.URL + "/{server}"})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Nudge(t.Context(), "a-1"); err != nil {
		t.Fatal(err)
	}
	n.Close(t.Context())
	if got := receiveBodies(t, sub, 1); got[0] != "a-1" {
		t.Fatalf("pub/sub body %q, want a-1", got[0])
	}
	if got := hits(); len(got) != 1 || got[0].path != "/a-1" {
		t.Fatalf("HTTP requests %+v, want one POST /a-1", got)
	}
}

// TestNudgeTimeout checks that a host that never answers costs at most the
// timeout, and is reported.
func TestNudgeTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	n, err := New(t.Context(), Config{URL: srv.URL + "/{server}", Timeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = n.Nudge(t.Context(), "slow-1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Nudge of a silent host = %v, want a deadline error", err)
	}
}

func TestNudgeUnreachable(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	u := srv.URL
	srv.Close() // nothing listens there any more
	n, err := New(t.Context(), Config{URL: u + "/{server}"})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Nudge(t.Context(), "web-1"); err == nil || !strings.Contains(err.Error(), "web-1") {
		t.Fatalf("Nudge to a closed port = %v, want an error naming web-1", err)
	}
}

func TestDisabled(t *testing.T) {
	n, err := New(t.Context(), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if n.Enabled() {
		t.Fatal("zero Config is Enabled")
	}
	if err := n.Nudge(t.Context(), "web-1"); err != nil {
		t.Fatalf("Nudge with nothing configured: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown topic scheme", Config{Topic: "carrier-pigeon://coop"}, "open topic"},
		{"template not http", Config{URL: "ftp://{server}/nudge"}, "http"},
		{"template unknown placeholder", Config{URL: "http://{host}:8080/nudge"}, "placeholder"},
		{"template no host", Config{URL: "http:///nudge/{server}"}, "no host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(t.Context(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv(EnvTopic, "mem://x")
	t.Setenv(EnvURL, "http://{server}:8080/nudge")
	t.Setenv(EnvGCE, "my-project/us-central1-a")
	if got := FromEnv(); got.Topic != "mem://x" || got.URL != "http://{server}:8080/nudge" || got.GCE != "my-project/us-central1-a" {
		t.Fatalf("FromEnv() = %+v", got)
	}
}

func TestParseTemplate(t *testing.T) {
	tests := []struct {
		in     string
		ok     bool
		expand string // expansion for web-1
	}{
		{"http://{server}:8080/nudge", true, "http://web-1:8080/nudge"},
		{"https://relay.example.com/nudge?host={server}", true, "https://relay.example.com/nudge?host=web-1"},
		{"http://relay.example.com/nudge", true, "http://relay.example.com/nudge"},
		{"http://{server}.internal/{server}", true, "http://web-1.internal/web-1"},
		{"", false, ""},
		{"{server}", false, ""},
		{"http://{server", false, ""},
		{"http://{server}}/x", false, ""},
		{"http://{SERVER}/x", false, ""},
		{"unix:///run/pulld.sock", false, ""},
		{"http://[::1/x", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			tmpl, err := parseTemplate(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("parseTemplate(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if tt.ok {
				if got := tmpl.expand("web-1"); got != tt.expand {
					t.Fatalf("expand = %q, want %q", got, tt.expand)
				}
			}
		})
	}
}
