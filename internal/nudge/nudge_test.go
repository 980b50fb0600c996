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
	"sync/atomic"
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

// bodiesBefore receives from sub until a message whose body is end, and
// then until no message came for quietPeriod, and returns the bodies of all
// but end, sorted. Sending end on the topic after the messages under test
// makes their absence as certain as their presence: the driver has
// delivered them by the time it delivers end, and gocloud's subscription,
// which may reorder what it fetched in parallel, hands them out within the
// quiet period.
func bodiesBefore(t *testing.T, sub *pubsub.Subscription, end string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var got []string
	for ended := false; ; {
		rctx := ctx
		if ended {
			var cancel context.CancelFunc
			rctx, cancel = context.WithTimeout(ctx, quietPeriod)
			defer cancel()
		}
		m, err := sub.Receive(rctx)
		if ended && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			slices.Sort(got)
			return got
		}
		if err != nil {
			t.Fatalf("receive after %q: %v", got, err)
		}
		m.Ack()
		if string(m.Body) == end {
			ended = true
		} else {
			got = append(got, string(m.Body))
		}
	}
}

// quietPeriod is how long bodiesBefore waits for stragglers.
const quietPeriod = 100 * time.Millisecond

// endMark is the body of the message that ends a test's messages.
const endMark = "end-of-test"

// TestNudgePubSubMem nudges web-1 and web-2 through mem:// topics. With a
// topic URL without {server}, both messages go to that one topic; with
// {server}, each goes to its own server's topic and nowhere else. Close,
// called concurrently, then shuts down every topic the Nudger opened and
// only those, and a later nudge fails.
func TestNudgePubSubMem(t *testing.T) {
	tests := []struct {
		name  string
		topic string // Config.Topic, after a unique mem:// URL
		// want holds, by topic (after the same unique URL), the bodies its
		// subscriber must receive; nil for a topic the Nudger must not use.
		want map[string][]string
	}{
		{"shared", "", map[string][]string{
			"": {"group-web", "web-1", "web-2"},
		}},
		{"per-server", "-{server}", map[string][]string{
			"-web-1":     {"web-1"},
			"-web-2":     {"web-2"},
			"-web-3":     nil,
			"-group-web": {"group-web"}, // one message for every member
			"-group-api": nil,
			"":           nil,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := uniqueMemTopic(t)
			topics := map[string]*pubsub.Topic{}
			subs := map[string]*pubsub.Subscription{}
			for suffix := range tt.want {
				// A mem:// topic must exist before a subscription to it can
				// be opened; the Nudger's OpenTopic returns this same topic.
				topic, err := pubsub.OpenTopic(t.Context(), base+suffix)
				if err != nil {
					t.Fatal(err)
				}
				sub, err := pubsub.OpenSubscription(t.Context(), base+suffix)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { sub.Shutdown(context.Background()); topic.Shutdown(context.Background()) })
				topics[suffix], subs[suffix] = topic, sub
			}

			n, err := New(t.Context(), Config{Topic: base + tt.topic})
			if err != nil {
				t.Fatal(err)
			}
			if !n.Enabled() {
				t.Fatal("Enabled() = false with a topic")
			}
			if err := n.Nudge(t.Context(), "web-1", "web-2"); err != nil {
				t.Fatalf("Nudge: %v", err)
			}
			if err := n.NudgeGroup(t.Context(), "web", 0); err != nil {
				t.Fatalf("NudgeGroup: %v", err)
			}
			for suffix, want := range tt.want {
				if err := topics[suffix].Send(t.Context(), &pubsub.Message{Body: []byte(endMark)}); err != nil {
					t.Fatal(err)
				}
				if got := bodiesBefore(t, subs[suffix], endMark); !slices.Equal(got, want) {
					t.Errorf("topic %s received %q, want %q", base+suffix, got, want)
				}
			}

			var wg sync.WaitGroup
			for range 3 {
				wg.Go(func() {
					if err := n.Close(t.Context()); err != nil {
						t.Errorf("Close: %v", err)
					}
				})
			}
			wg.Wait()
			for suffix, want := range tt.want {
				err := topics[suffix].Send(t.Context(), &pubsub.Message{Body: []byte(endMark)})
				if opened := want != nil; opened != (err != nil) {
					t.Errorf("after Close, Send on %s = %v; the Nudger opened it: %v", base+suffix, err, opened)
				}
			}
			if err := n.Nudge(t.Context(), "web-1"); err == nil || !strings.Contains(err.Error(), "closed") {
				t.Errorf("Nudge after Close = %v, want an error saying it is closed", err)
			}
		})
	}
}

// TestNudgePerServerOpenFails checks that a per-server topic that cannot be
// opened fails the nudge of that server, naming it and the topic, and not
// New: the template is valid, only its expansion is refused by the driver
// (mem:// takes no query parameters).
func TestNudgePerServerOpenFails(t *testing.T) {
	topicURL := uniqueMemTopic(t) + "-{server}?x=1"
	n, err := New(t.Context(), Config{Topic: topicURL})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { n.Close(context.Background()) })
	err = n.Nudge(t.Context(), "web-1")
	if err == nil {
		t.Fatal("Nudge succeeded although the topic cannot be opened")
	}
	for _, want := range []string{"web-1", "open topic", strings.ReplaceAll(topicURL, "{server}", "web-1")} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}

// natsServer returns the URL of a real NATS server (nats-server, as in
// internal/testing/natstest), started on first use and left running until the test
// binary exits: gocloud's nats:// opener, which the Nudger uses, dials
// NATS_SERVER_URL once per process, so every test and every -count run
// must find the same server there.
var natsServer = sync.OnceValues(func() (string, error) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		return "", err
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		return "", errors.New("NATS server not accepting connections after 10s")
	}
	return ns.ClientURL(), nil
})

// TestNudgePubSubNATS nudges db-1 and web-1 through a real NATS server with
// the nats:// driver pulld subscribes with: on one subject, both messages
// reach its subscriber; on per-server subjects, each server's subscriber
// receives its own message only.
func TestNudgePubSubNATS(t *testing.T) {
	url, err := natsServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("NATS_SERVER_URL", url)
	tests := []struct {
		name  string
		topic string              // Config.Topic
		want  map[string][]string // by subscription URL, the bodies its subscriber must receive
	}{
		{"shared", "nats://pushpull.nudge", map[string][]string{
			"nats://pushpull.nudge": {"db-1", "web-1"},
		}},
		{"per-server", "nats://pushpull.{server}?natsv2=true", map[string][]string{
			"nats://pushpull.db-1?natsv2=true":  {"db-1"},
			"nats://pushpull.web-1?natsv2=true": {"web-1"},
			"nats://pushpull.web-2?natsv2=true": nil,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			subs := map[string]*pubsub.Subscription{}
			for u := range tt.want {
				sub, err := pubsub.OpenSubscription(t.Context(), u)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { sub.Shutdown(context.Background()) })
				// The subscription is registered before the nudges are
				// published: both go through the same process-wide
				// connection, which the server reads in order.
				subs[u] = sub
			}

			n, err := New(t.Context(), Config{Topic: tt.topic})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { n.Close(context.Background()) })
			if err := n.Nudge(t.Context(), "db-1", "web-1"); err != nil {
				t.Fatalf("Nudge: %v", err)
			}
			for u, want := range tt.want {
				// The end mark goes through the same process-wide connection
				// as the nudges, so it arrives after them.
				end, err := pubsub.OpenTopic(t.Context(), u)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { end.Shutdown(context.Background()) })
				if err := end.Send(t.Context(), &pubsub.Message{Body: []byte(endMark)}); err != nil {
					t.Fatal(err)
				}
				if got := bodiesBefore(t, subs[u], endMark); !slices.Equal(got, want) {
					t.Errorf("%s received %q, want %q", u, got, want)
				}
			}
		})
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
	// A template with {server} addresses one host: it cannot reach a group.
	if err := n.NudgeGroup(t.Context(), "web", 0); err != nil {
		t.Fatalf("NudgeGroup: %v", err)
	}
	if got := hits(); len(got) != len(want) {
		t.Errorf("a group nudge posted to a per-host URL: %+v", got[len(want):])
	}
}

// TestNudgeGroupRelay checks that a relay URL (no {server}) gets one POST
// per group nudge, its body the group's address.
func TestNudgeGroupRelay(t *testing.T) {
	srv, hits := recorder(t, func(string) int { return http.StatusNoContent })
	n, err := New(t.Context(), Config{URL: srv.URL + "/relay"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(t.Context())
	if err := n.NudgeGroup(t.Context(), "Bad Name", 0); err == nil || !strings.Contains(err.Error(), "Bad Name") {
		t.Errorf("NudgeGroup = %v, want an error naming the invalid group", err)
	}
	if err := n.NudgeGroup(t.Context(), "web", 0); err != nil {
		t.Fatal(err)
	}
	want := []hit{{"POST", "/relay", "group-web", "text/plain; charset=utf-8"}}
	if got := hits(); !slices.Equal(got, want) {
		t.Errorf("requests = %+v, want %+v", got, want)
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

// TestNewErrors checks that New refuses each malformed setting with one
// line that names it.
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
		{"topic template unknown placeholder", Config{Topic: "nats://pushpull.{host}"}, "placeholder"},
		{"topic template stray brace", Config{Topic: "nats://pushpull.{server}}"}, "placeholder"},
		{"topic without placeholder stray brace", Config{Topic: "mem://pushpull-{serv}"}, "placeholder"},
		{"topic template unknown scheme", Config{Topic: "carrier-pigeon://coop-{server}"}, `no topic driver for scheme "carrier-pigeon"`},
		{"topic template no scheme", Config{Topic: "pushpull.{server}"}, "scheme://"},
		{"topic template does not parse", Config{Topic: "mem://%zz-{server}"}, "invalid URL escape"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(t.Context(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is more than one line", err)
			}
			if setting := tt.cfg.Topic + tt.cfg.URL; !strings.Contains(err.Error(), setting) {
				t.Errorf("error %q does not name %s", err, setting)
			}
		})
	}
}

func TestParseTopic(t *testing.T) {
	tests := []struct {
		in        string
		ok        bool
		perServer bool
		expand    string // expansion for web-1
	}{
		{"nats://pushpull.{server}?natsv2=true", true, true, "nats://pushpull.web-1?natsv2=true"},
		{"mem://nudge/{server}", true, true, "mem://nudge/web-1"},
		{"nats://{server}", true, true, "nats://web-1"},
		{"nats://pushpull.nudge", true, false, "nats://pushpull.nudge"},
		// Without the placeholder, New opens the URL, which checks it.
		{"carrier-pigeon://coop", true, false, "carrier-pigeon://coop"},
		{"nats://pushpull.{SERVER}", false, false, ""},
		{"nats://pushpull.{server", false, false, ""},
		{"{server}", false, false, ""},
		{"gcppubsub://projects/p/topics/nudge-{server}", true, true, "gcppubsub://projects/p/topics/nudge-web-1"}, // linked in for GCS fleets
		{"azuresb://nudge-{server}", false, false, ""},                                                            // driver not linked in
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			tmpl, err := parseTopic(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("parseTopic(%q) error = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if !tt.ok {
				return
			}
			if tmpl.PerServer() != tt.perServer {
				t.Errorf("PerServer() = %v, want %v", tmpl.PerServer(), tt.perServer)
			}
			if got := tmpl.Expand("web-1"); got != tt.expand {
				t.Errorf("Expand(web-1) = %q, want %q", got, tt.expand)
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
				if got := tmpl.Expand("web-1"); got != tt.expand {
					t.Fatalf("expand = %q, want %q", got, tt.expand)
				}
			}
		})
	}
}

// TestSpread checks the window a group nudge spreads its members over: it
// keeps members × MemberRequests under SpreadRate per second, capped.
func TestSpread(t *testing.T) {
	for _, tc := range []struct {
		members int
		want    time.Duration
	}{
		{0, 0},
		{-1, 0},
		{1000, 4500 * time.Millisecond},
		{10000, 45 * time.Second},
		{100000, 450 * time.Second},
		{10000000, MaxSpread},
	} {
		if got := Spread(tc.members); got != tc.want {
			t.Errorf("Spread(%d) = %v, want %v", tc.members, got, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"2.5s", 2500 * time.Millisecond}, {"-1s", 0}, {"soon", 0}, {"24h", MaxSpread},
	} {
		if got := ParseSpread(tc.in); got != tc.want {
			t.Errorf("ParseSpread(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
	for range 1000 {
		if d := Delay(time.Second); d < 0 || d >= time.Second {
			t.Fatalf("Delay(1s) = %v, want within [0, 1s)", d)
		}
	}
	if Delay(0) != 0 {
		t.Error("Delay(0) != 0")
	}
}

// TestNudgeGroupSpread checks that a group nudge carries its spread: as
// the pub/sub message's metadata, and as a relay POST's header.
func TestNudgeGroupSpread(t *testing.T) {
	topicURL := uniqueMemTopic(t)
	topic, err := pubsub.OpenTopic(t.Context(), topicURL)
	if err != nil {
		t.Fatal(err)
	}
	defer topic.Shutdown(context.Background())
	sub, err := pubsub.OpenSubscription(t.Context(), topicURL)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Shutdown(context.Background())
	var header atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header.Store(r.Header.Get(SpreadHeader))
	}))
	defer srv.Close()
	n, err := New(t.Context(), Config{Topic: topicURL, URL: srv.URL + "/relay"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close(t.Context())
	if err := n.NudgeGroup(t.Context(), "web", 10000); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.Receive(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	msg.Ack()
	if string(msg.Body) != "group-web" || msg.Metadata[SpreadKey] != "45s" {
		t.Errorf("message %q %v, want group-web with %s=45s", msg.Body, msg.Metadata, SpreadKey)
	}
	if got, _ := header.Load().(string); got != "45s" {
		t.Errorf("relay header %s = %q, want 45s", SpreadHeader, got)
	}
}

// TestSpreadSimulation simulates a group push to 1,000, 10,000 and 100,000
// members: each waits Delay(Spread(n)) and then makes MemberRequests
// requests over the next second. The busiest second must stay near
// SpreadRate (under S3's 5,500 GET/s per prefix), where without the spread
// every member would ask in the same second.
func TestSpreadSimulation(t *testing.T) {
	for _, n := range []int{1000, 10000, 100000} {
		window := Spread(n)
		perSecond := map[int64]float64{}
		for range n {
			start := Delay(window)
			// MemberRequests spread evenly over one second from start.
			for k := range MemberRequests {
				at := start + time.Duration(k)*time.Second/MemberRequests
				perSecond[int64(at/time.Second)]++
			}
		}
		peak := 0.0
		for _, r := range perSecond {
			peak = max(peak, r)
		}
		t.Logf("%d members: window %v, busiest second %.0f requests (without the spread: %d)", n, window, peak, n*MemberRequests)
		if limit := SpreadRate * 1.5; peak > limit { // 1.5: the busiest of hundreds of seconds, by chance
			t.Errorf("%d members: %0.f requests in the busiest second, want at most %.0f", n, peak, limit)
		}
	}
}
