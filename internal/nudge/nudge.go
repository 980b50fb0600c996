// Package nudge tells pulld hosts to look at their manifest now, instead of
// at their next poll, so they act within a second. release -deploy and pushui both
// nudge the servers whose manifests they changed.
//
// Three forms are implemented, and a Nudger uses every one it is configured
// with:
//
//   - pub/sub: one message per server on a gocloud.dev/pubsub topic, whose
//     body is the server name (Address; a group's is group-{group}). The
//     mem:// (in-process), nats://, gcppubsub:// (Google Cloud Pub/Sub, for
//     GCS fleets) and awssns:// / awssqs:// (for S3 fleets) drivers are
//     linked in; nats:// reads the server address from NATS_SERVER_URL. On
//     Pub/Sub and SNS/SQS a subscription hands each message to one reader,
//     so every host needs a subscription of its own to each topic it
//     follows (see docs/design.md, "Groups").
//     The topic is either one for the whole fleet, on which every pulld
//     receives every server's message and ignores the others', or, when the
//     topic URL holds the placeholder {server} (nats://pushpull.{server}),
//     each server's own: pulld -nudge takes the same placeholder, so each
//     host receives only its own messages. A push to N servers of a fleet of
//     N hosts then costs N deliveries instead of N², so per-server topics are
//     the form to use for large fleets.
//   - HTTP: a POST to a URL template such as http://{server}:8080/nudge,
//     with the server name as a text/plain body. {server} is the only
//     placeholder; it may appear anywhere, or not at all (a relay that reads
//     the body).
//   - GCE: the instance metadata item pushrev of the GCE instance whose
//     name is the server name, in the project and zone Config.GCE names
//     (PROJECT/ZONE), is set to a fresh unique value through the Compute
//     API (instances.get, then instances.setMetadata); pulld -nudge gce
//     waits on it through the instance's metadata server. Every other
//     metadata item is kept: the change is conditional on the metadata
//     fingerprint just read, and is read and tried again when GCE answers
//     412 because someone else changed the metadata meanwhile. The
//     credentials are Application Default Credentials; their principal
//     needs the IAM permissions compute.instances.get and
//     compute.instances.setMetadata on the instances (both are in
//     roles/compute.instanceAdmin.v1, or grant a custom role), and, for
//     instances that run as a service account, iam.serviceAccounts.actAs on
//     that account (roles/iam.serviceAccountUser). A server name that is
//     not a valid instance name fails for that server only. A group is
//     nudged through the project's common instance metadata instead, which
//     every instance sees: the item GroupPushrevKey(group) is set the same
//     way (projects.get, then projects.setCommonInstanceMetadata, retried on
//     412), which needs compute.projects.get and
//     compute.projects.setCommonInstanceMetadata on the project.
//
// Nudging is best-effort by design: pulld's conditional poll is the failsafe
// that makes every host converge anyway. Nudge therefore never stops at the
// first failure; it tries every server and every form, logs each failure,
// and returns them joined so the caller can show them — release only logs
// them and still succeeds.
package nudge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"gocloud.dev/pubsub"
	_ "gocloud.dev/pubsub/awssnssqs"  // awssns:// and awssqs:// topics, for S3 fleets
	_ "gocloud.dev/pubsub/gcppubsub"  // gcppubsub:// topics, for GCS fleets
	_ "gocloud.dev/pubsub/mempubsub"  // mem:// topics
	_ "gocloud.dev/pubsub/natspubsub" // nats:// topics
	compute "google.golang.org/api/compute/v1"

	"github.com/pushpull/pushpull/internal/nudge/urltemplate"
	"github.com/pushpull/pushpull/manifest"
)

// Environment variables programs read as defaults for Config.Topic,
// Config.URL and Config.GCE, so that release and pushui are configured the
// same way.
const (
	EnvTopic = "PUSHPULL_NUDGE_TOPIC"
	EnvURL   = "PUSHPULL_NUDGE_URL"
	EnvGCE   = "PUSHPULL_NUDGE_GCE"
)

// DefaultTimeout bounds one nudge of one server when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// maxInFlight bounds the nudges in flight at once.
const maxInFlight = 16

// Config says how to nudge. The zero Config nudges nothing.
type Config struct {
	// Topic is a gocloud.dev/pubsub topic URL (mem://name, nats://subject),
	// or a template of one holding the placeholder {server}
	// (nats://pushpull.{server}): then each server's message goes to the
	// topic of its own name, opened the first time that server is nudged.
	// {server} is the only brace expression allowed. Empty means no pub/sub
	// nudges.
	Topic string
	// URL is an http:// or https:// URL template; {server} is replaced by
	// the server name. Empty means no HTTP nudges.
	URL string
	// GCE is PROJECT/ZONE (such as my-project/us-central1-a): each server
	// is the GCE instance of that name there, and is nudged by setting its
	// instance metadata item pushrev. Empty means no GCE nudges.
	GCE string
	// GCEEndpoint is the base URL of the Compute API for the GCE form, such
	// as a test server's. When it is set, requests go there without any
	// credentials; empty means compute.googleapis.com with Application
	// Default Credentials. It is meant for tests.
	GCEEndpoint string
	// Client makes the HTTP nudges; nil means http.DefaultClient.
	Client *http.Client
	// Timeout bounds each nudge of each server; zero means DefaultTimeout.
	Timeout time.Duration
	// Logger receives one record per nudge; nil means discard.
	Logger *slog.Logger
}

// FromEnv returns a Config whose Topic, URL and GCE come from the
// environment variables EnvTopic, EnvURL and EnvGCE.
func FromEnv() Config {
	return Config{Topic: os.Getenv(EnvTopic), URL: os.Getenv(EnvURL), GCE: os.Getenv(EnvGCE)}
}

// Nudger sends nudges. It is safe for concurrent use; Close it when done.
type Nudger struct {
	pub     *publisher           // nil: no pub/sub
	tmpl    urltemplate.Template // zero: no HTTP
	compute *compute.Service     // nil: no GCE
	gce     gceTarget
	client  *http.Client
	timeout time.Duration
	log     *slog.Logger
}

// New checks cfg, opens its topic and makes its Compute API client. It
// fails on a malformed URL template, topic URL template, GCE value or GCE
// endpoint, a topic that cannot be opened, or (for the GCE form) no
// Application Default Credentials, so a misconfiguration is seen before
// anything is changed; once New succeeded, failures are only per nudge.
//
// A topic URL holding {server} is checked (its placeholders, and that its
// scheme has a driver linked in) but not opened: each server's topic is
// opened when that server is first nudged, so what only opening shows (no
// NATS_SERVER_URL, for one) is a failure of those nudges.
func New(ctx context.Context, cfg Config) (*Nudger, error) {
	n := &Nudger{client: cfg.Client, timeout: cfg.Timeout, log: cfg.Logger}
	if n.client == nil {
		n.client = http.DefaultClient
	}
	if n.timeout <= 0 {
		n.timeout = DefaultTimeout
	}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if cfg.URL != "" {
		t, err := parseTemplate(cfg.URL)
		if err != nil {
			return nil, err
		}
		n.tmpl = t
	}
	if cfg.GCE != "" {
		g, err := parseGCE(cfg.GCE)
		if err != nil {
			return nil, err
		}
		svc, err := newComputeService(ctx, cfg.GCEEndpoint)
		if err != nil {
			return nil, err
		}
		n.gce, n.compute = g, svc
	}
	if cfg.Topic != "" {
		p, err := newPublisher(ctx, cfg.Topic)
		if err != nil {
			return nil, err
		}
		n.pub = p
	}
	return n, nil
}

// Enabled reports whether n was configured to nudge anything at all.
func (n *Nudger) Enabled() bool { return n.pub != nil || n.tmpl.String() != "" || n.compute != nil }

// Nudge nudges each server by every configured form, concurrently. It
// returns once every nudge has succeeded, failed, or timed out. Each
// failure is logged at Warn and the failures are returned joined, one per
// server and form; a nil error means every nudge was delivered (to the
// topic, answered 2xx, or the metadata change accepted by GCE). An invalid
// server name is a failure for that server only. Nudging the same server
// twice is harmless.
func (n *Nudger) Nudge(ctx context.Context, servers ...string) error {
	ts := make([]manifest.Target, len(servers))
	for i, s := range servers {
		ts[i] = manifest.Server(s)
	}
	return n.nudge(ctx, ts, 0)
}

// NudgeGroup nudges every member of group, with one message per form: a
// pub/sub message addressed to the group (Address), an HTTP POST to a
// relay URL (one without {server}), and for GCE the project metadata item
// GroupPushrevKey(group), which every instance of the project sees. An
// HTTP template with {server} names one host and cannot reach a group: it
// skips groups, whose members then act at their next poll. members, the group's size as far as the caller knows (0: unknown),
// sizes the window over which members spread their reads (Spread); the
// message carries it (SpreadKey). Otherwise it is as Nudge.
func (n *Nudger) NudgeGroup(ctx context.Context, group string, members int) error {
	return n.nudge(ctx, []manifest.Target{manifest.Group(group)}, Spread(members))
}

// SpreadKey names the window a group nudge asks its members to spread
// their reads over, as a Go duration: the pub/sub message's metadata key,
// and (as SpreadHeader) the HTTP header of a relay's POST.
const (
	SpreadKey    = "pushpull-spread"
	SpreadHeader = "Pushpull-Spread"
)

// Bucket read rates the spread of a group nudge is sized for.
const (
	// SpreadRate is the bucket requests per second a group's members may
	// make together after a nudge: well under what one prefix serves (S3
	// about 5,500 GET/s per prefix; a GCS bucket starts near 5,000 reads/s
	// and ramps up).
	SpreadRate = 2000
	// MemberRequests is what one member asks of the bucket after a group
	// nudge, as BenchmarkFleet/group measures it (docs/scale.md): the
	// checks of its own and the group's manifest, the group's manifest,
	// the package's metadata and body, and its status writes.
	MemberRequests = 9
	// MaxSpread bounds the window.
	MaxSpread = 10 * time.Minute
)

// Spread returns the window over which members of a group of that size
// spread their reads after a nudge, so that together they stay under
// SpreadRate: members × MemberRequests / SpreadRate, at most MaxSpread
// (1,000 members: 4.5 s; 10,000: 45 s; 100,000: 7.5 min). Each member waits
// a random time within it. 0 for an unknown size.
func Spread(members int) time.Duration {
	if members <= 0 {
		return 0
	}
	d := time.Duration(members) * MemberRequests * time.Second / SpreadRate
	return min(d, MaxSpread)
}

// Address is what a nudge for t is addressed to: the server's name for a
// server, "group-{group}" for a group. It is a pub/sub message's body and
// what {server} of a topic template becomes, so a per-server topic
// template gives each group a topic of its own beside its members'
// (nats://pushpull.{server} → nats://pushpull.group-web). A server that is
// itself named group-web would also receive web's nudges; a nudge only
// makes a host poll, so that costs one extra poll and nothing else.
func Address(t manifest.Target) string {
	if t.IsGroup() {
		return "group-" + t.Name
	}
	return t.Name
}

func (n *Nudger) nudge(ctx context.Context, targets []manifest.Target, spread time.Duration) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, maxInFlight)
	)
	fail := func(t manifest.Target, via string, err error) {
		n.log.Warn("nudge failed", string(t.Kind), t.Name, "via", via, "err", err)
		mu.Lock()
		errs = append(errs, err)
		mu.Unlock()
	}
	for _, t := range targets {
		if err := t.Check(); err != nil {
			fail(t, "-", fmt.Errorf("nudge: %w", err))
			continue
		}
		for _, form := range n.forms() {
			if t.IsGroup() && !form.groups {
				continue
			}
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				ctx, cancel := context.WithTimeout(ctx, n.timeout)
				defer cancel()
				if err := form.send(ctx, t, spread); err != nil {
					fail(t, form.via, err)
					return
				}
				n.log.Info("nudged", string(t.Kind), t.Name, "via", form.via)
			}()
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

// form is one way of nudging a server or a group, with the spread.
type form struct {
	via    string
	send   func(ctx context.Context, t manifest.Target, spread time.Duration) error
	groups bool // whether one send reaches every member of a group
}

func (n *Nudger) forms() []form {
	var fs []form
	if n.pub != nil {
		fs = append(fs, form{"pubsub", n.publish, true})
	}
	if n.tmpl.String() != "" {
		fs = append(fs, form{"http", n.post, !n.tmpl.PerServer()})
	}
	if n.compute != nil {
		fs = append(fs, form{"gce", n.gceSend, true})
	}
	return fs
}

func (n *Nudger) publish(ctx context.Context, target manifest.Target, spread time.Duration) error {
	server := Address(target)
	t, err := n.pub.topic(ctx, server)
	if err == nil {
		msg := &pubsub.Message{Body: []byte(server)}
		if spread > 0 {
			msg.Metadata = map[string]string{SpreadKey: spread.String()}
		}
		err = t.Send(ctx, msg)
	}
	if err != nil {
		return fmt.Errorf("nudge %s: publish: %w", server, err)
	}
	return nil
}

func (n *Nudger) post(ctx context.Context, target manifest.Target, spread time.Duration) error {
	server := Address(target)
	u := n.tmpl.Expand(server)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(server))
	if err != nil {
		return fmt.Errorf("nudge %s: %w", server, err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if spread > 0 {
		req.Header.Set(SpreadHeader, spread.String())
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("nudge %s: %w", server, err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("nudge %s: POST %s: %s", server, u, resp.Status)
	}
	return nil
}

// Close shuts every topic n opened down, flushing messages not yet sent,
// and returns the failures joined. It is safe to call on a Nudger with no
// topic, more than once, and concurrently with Nudge and itself; a pub/sub
// nudge after Close fails.
func (n *Nudger) Close(ctx context.Context) error {
	if n.pub == nil {
		return nil
	}
	return n.pub.close(ctx)
}

// errClosed is the failure of a pub/sub nudge after Close.
var errClosed = errors.New("nudger closed")

// publisher holds the topics of the pub/sub form, by URL: the one topic of
// a topic URL without {server}, opened by New, or each server's, opened on
// its first nudge. Memory grows with the servers nudged, that is at most
// with the fleet.
type publisher struct {
	tmpl urltemplate.Template

	mu     sync.Mutex
	topics map[string]*pubsub.Topic // nil once closed
}

// newPublisher checks the topic URL template s and, when it has no
// placeholder, opens its one topic.
func newPublisher(ctx context.Context, s string) (*publisher, error) {
	tmpl, err := parseTopic(s)
	if err != nil {
		return nil, err
	}
	p := &publisher{tmpl: tmpl, topics: map[string]*pubsub.Topic{}}
	if !tmpl.PerServer() {
		t, err := pubsub.OpenTopic(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("nudge: open topic %s: %w", s, err)
		}
		p.topics[s] = t
	}
	return p, nil
}

// topic returns server's topic, opening it on first use. Topics are opened
// under p's lock, so a URL is never opened twice; opening needs no round
// trip with the drivers linked in, except for the first nats:// topic,
// which dials NATS_SERVER_URL.
func (p *publisher) topic(ctx context.Context, server string) (*pubsub.Topic, error) {
	u := p.tmpl.Expand(server)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.topics == nil {
		return nil, errClosed
	}
	if t := p.topics[u]; t != nil {
		return t, nil
	}
	t, err := pubsub.OpenTopic(ctx, u)
	if err != nil {
		return nil, fmt.Errorf("open topic %s: %w", u, err)
	}
	p.topics[u] = t
	return t, nil
}

// close shuts every topic down, in the order of their URLs.
func (p *publisher) close(ctx context.Context) error {
	p.mu.Lock()
	topics := p.topics
	p.topics = nil
	p.mu.Unlock()
	var errs []error
	for _, u := range slices.Sorted(maps.Keys(topics)) {
		if err := topics[u].Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("nudge: close topic %s: %w", u, err))
		}
	}
	return errors.Join(errs...)
}

// parseTopic checks a topic URL template: the only brace expression it may
// hold is {server}, and, when it holds one, with a server name in its place
// it must be a URL whose scheme has a topic driver linked in. A URL without
// the placeholder is checked by opening it.
func parseTopic(s string) (urltemplate.Template, error) {
	bad := func(why string) (urltemplate.Template, error) {
		return urltemplate.Template{}, fmt.Errorf("nudge: topic URL template %q: %s", s, why)
	}
	t, err := urltemplate.Parse(s)
	if err != nil {
		return urltemplate.Template{}, fmt.Errorf("nudge: topic URL template %q: %w", s, err)
	}
	if !t.PerServer() {
		return t, nil
	}
	u, err := url.Parse(t.Expand("server-0"))
	if err != nil {
		return bad(err.Error())
	}
	if u.Scheme == "" {
		return bad("want scheme://…")
	}
	if !pubsub.DefaultURLMux().ValidTopicScheme(u.Scheme) {
		return bad(fmt.Sprintf("no topic driver for scheme %q", u.Scheme))
	}
	return t, nil
}

// parseTemplate checks an HTTP nudge URL template: the only brace
// expression it may hold is {server}, and with a server name in its place
// it must be an absolute http or https URL with a host.
func parseTemplate(s string) (urltemplate.Template, error) {
	bad := func(why string) (urltemplate.Template, error) {
		return urltemplate.Template{}, fmt.Errorf("nudge: URL template %q: %s", s, why)
	}
	t, err := urltemplate.Parse(s)
	if err != nil {
		return urltemplate.Template{}, fmt.Errorf("nudge: URL template %q: %w", s, err)
	}
	u, err := url.Parse(t.Expand("server-0"))
	if err != nil {
		return bad(err.Error())
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return bad("want an http:// or https:// URL")
	}
	if u.Host == "" || u.Hostname() == "" {
		return bad("no host")
	}
	return t, nil
}
