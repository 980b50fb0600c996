package pulld

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pushpull/pushpull/internal/cli"
	"github.com/pushpull/pushpull/internal/nudge"
	"github.com/pushpull/pushpull/internal/nudge/urltemplate"
	"github.com/pushpull/pushpull/manifest"
)

// Defaults of Config's fields.
const (
	DefaultRoot = "/var/lib/pulld"
	DefaultPoll = 5 * time.Minute
	// DefaultHeartbeat is the heartbeat at the default poll period: a
	// zero Config.Heartbeat takes the poll period, whatever it is, so that
	// pushui shows a host that stopped reporting as silent within three
	// poll periods (15 min at the default; manifest.Status.Stale). A large
	// fleet may raise it to save status writes (docs/scale.md), and a host
	// is then silent after three heartbeats.
	DefaultHeartbeat = DefaultPoll
	// DefaultRolloutHeartbeat is the heartbeat while an entry is under a
	// rollout, so that its controller tells a dead host from a quiet one.
	DefaultRolloutHeartbeat = 10 * time.Second
	DefaultListen           = "127.0.0.1:10114" // Skia's pulld port
	DefaultKeep             = 5
	DefaultStepTimeout      = 30 * time.Minute // Teletraan's
	DefaultGrace            = 2 * time.Minute
	DefaultSelf             = "pulld"
	DefaultRetryMin         = time.Minute
	DefaultRetryMax         = time.Hour
)

// HostPlaceholder stands for this host's server name in a -nudge
// subscription URL template, beside {server}, which stands for each of the
// addresses a host follows (its server's and its groups', nudge.Address).
const HostPlaceholder = "{host}"

// NudgeGCE is the -nudge value that waits on the GCE instance metadata
// attribute pushrev; "gce:ATTR" waits on ATTR instead.
const NudgeGCE = "gce"

// Errors Run returns (wrapped), which the command maps to exit codes.
var (
	// ErrManifest: the manifest could not be read or is invalid (exit 2).
	ErrManifest = errors.New("unusable manifest")
	// ErrFailed: some env is not serving what the manifest says (exit 1).
	ErrFailed = errors.New("not every env is serving its manifest entry")
)

// Config is everything pulld is told by its flags. Zero durations, Keep,
// Root and Self mean their defaults (see Validate), a zero Heartbeat the
// poll period; an empty Listen or HostInfo means none.
type Config struct {
	Bucket string // bucket URL (required)
	Server string // this host's server name (required)
	// Groups are the groups the host is in, whose manifests it follows
	// beside its own; nil takes the groups= line of HostInfo.
	Groups []string
	Root   string // pkginstall's root directory

	Once      bool // reconcile once and return
	DryRun    bool // print the plan and change nothing (implies Once)
	Terminate bool // run STOPPING for every env and return

	Poll time.Duration // poll period, ±20% jitter
	// Heartbeat is the longest interval between status writes; zero means
	// Poll (every poll writes one).
	Heartbeat time.Duration
	// RolloutHeartbeat replaces Poll and Heartbeat, when shorter, while
	// some entry is under a rollout: pulld then polls its manifests and
	// confirms its status that often.
	RolloutHeartbeat time.Duration
	Listen           string   // address of the HTTP endpoints; "" for none (the flag defaults to DefaultListen)
	Nudge            []string // nudge sources: "gce", "gce:ATTR", or pub/sub subscription URLs, in which {server} stands for Server
	HostInfo         string   // Teletraan host_info file; "" for none (the flag defaults to DefaultHostInfo)

	// ComputeEnvType is COMPUTE_ENV_TYPE of the scripts; "" takes
	// compute_env_type of host_info, else Teletraan's PRODUCTION.
	ComputeEnvType string
	// Splay, with Once, waits a random time up to it before the first
	// request, so that a fleet's cron jobs do not reach the bucket in the
	// same second (Teletraan's agent sleeps randomly when run from cron).
	Splay time.Duration

	Keep        int           // builds kept per env
	StepTimeout time.Duration // timeout of one script attempt
	VerifyKeys  []string      // minisign public key files, any of which may sign; none installs unsigned packages
	Grace       time.Duration // how long a running script may go on after SIGTERM
	Self        string        // app name of pulld's own package
	// AptFix runs apt-get -f install when a .deb's dpkg -i fails, to bring
	// in what it depends on (pkginstall.Config.AptFix).
	AptFix bool

	// RetryMin and RetryMax bound the backoff between attempts at an env
	// whose last attempt failed.
	RetryMin, RetryMax time.Duration

	// Out receives the plan printed by DryRun; nil means os.Stdout.
	Out io.Writer
	// Logger receives pulld's log; nil discards it.
	Logger *slog.Logger
}

// Validate fills in defaults and checks the configuration. Its errors wrap
// cli.ErrUsage and name the setting at fault.
func (c *Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("pulld: %w: %s", cli.ErrUsage, fmt.Sprintf(format, a...))
	}
	if c.Bucket == "" {
		return bad("-bucket is required")
	}
	if err := manifest.CheckName("server", c.Server); err != nil {
		return bad("-server: %v", err)
	}
	if err := checkGroups(c.Groups); err != nil {
		return bad("-groups: %v", err)
	}
	if c.Root == "" {
		c.Root = DefaultRoot
	}
	if c.DryRun && c.Terminate {
		return bad("-dry-run and -terminate exclude each other")
	}
	setDuration(&c.Poll, DefaultPoll)
	setDuration(&c.RolloutHeartbeat, DefaultRolloutHeartbeat)
	setDuration(&c.StepTimeout, DefaultStepTimeout)
	setDuration(&c.Grace, DefaultGrace)
	setDuration(&c.RetryMin, DefaultRetryMin)
	setDuration(&c.RetryMax, DefaultRetryMax)
	if c.Splay != 0 && !c.Once && !c.DryRun {
		return bad("-splay is for -once (cron mode); the daemon spreads its first poll by itself")
	}
	for name, d := range map[string]time.Duration{"-splay": c.Splay, "-poll": c.Poll, "-heartbeat": c.Heartbeat, "-rollout-heartbeat": c.RolloutHeartbeat, "-step-timeout": c.StepTimeout, "-grace": c.Grace, "-retry-min": c.RetryMin, "-retry-max": c.RetryMax} {
		if d < 0 {
			return bad("%s %v is negative", name, d)
		}
	}
	setDuration(&c.Heartbeat, c.Poll) // after the check: a negative -poll is named as such
	if c.RetryMax < c.RetryMin {
		c.RetryMax = c.RetryMin
	}
	if c.Keep == 0 {
		c.Keep = DefaultKeep
	}
	if c.Keep < 1 {
		return bad("-keep %d: at least 1 build must be kept", c.Keep)
	}
	if c.Self == "" {
		c.Self = DefaultSelf
	}
	if err := manifest.CheckName("app", c.Self); err != nil {
		return bad("-self: %v", err)
	}
	for _, n := range c.Nudge {
		if _, err := parseNudge(n, c.Server); err != nil {
			return bad("-nudge %q: %v", n, err)
		}
	}
	for _, k := range c.VerifyKeys {
		if _, err := os.Stat(k); err != nil {
			return bad("-verify-key: %v", err)
		}
	}
	if c.Out == nil {
		c.Out = os.Stdout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

func setDuration(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// nudgeSource is one parsed -nudge value.
type nudgeSource struct {
	kind string               // "gce" or "pubsub"
	arg  string               // the attribute, or the subscription URL with {server} expanded to the server
	tmpl urltemplate.Template // pubsub: the URL template, expanded once per group too
}

// name is the source's label in logs, metrics and /healthz.
func (n nudgeSource) name() string {
	if n.kind == NudgeGCE {
		return "gce"
	}
	if scheme, _, ok := strings.Cut(n.arg, "://"); ok {
		return "pubsub-" + scheme
	}
	return "pubsub"
}

// parseNudge parses a -nudge value: "gce", "gce:ATTR", or a pub/sub
// subscription URL, which may hold the placeholder {server} (the only brace
// expression allowed), expanded to server, a name manifest.CheckName
// accepted. With it, one unit file line such as
// -nudge nats://pushpull.{server}?natsv2=true subscribes each host to its
// own subject, matching the topic template of release and pushui.
func parseNudge(s, server string) (nudgeSource, error) {
	switch {
	case s == NudgeGCE:
		return nudgeSource{kind: NudgeGCE, arg: nudge.PushrevKey}, nil
	case strings.HasPrefix(s, NudgeGCE+":") && !strings.Contains(s, "://"):
		attr := strings.TrimPrefix(s, NudgeGCE+":")
		if attr == "" || strings.ContainsAny(attr, "/?&#") {
			return nudgeSource{}, fmt.Errorf("GCE attribute %q is not a plain name", attr)
		}
		return nudgeSource{kind: NudgeGCE, arg: attr}, nil
	}
	// {host} is this host's server name in every subscription, so that a
	// queue-like pub/sub (GCP Pub/Sub, SQS) gives each host its own
	// subscription to a group's topic: {host}--{server}.
	tmpl, err := urltemplate.Parse(strings.ReplaceAll(s, HostPlaceholder, server))
	if err != nil {
		return nudgeSource{}, fmt.Errorf("subscription URL template: %w (and %s)", err, HostPlaceholder)
	}
	u := tmpl.Expand(server)
	if err := nudge.CheckPubSubURL(u); err != nil {
		return nudgeSource{}, fmt.Errorf("want gce, gce:ATTR or a pub/sub subscription URL: %w", err)
	}
	return nudgeSource{kind: "pubsub", arg: u, tmpl: tmpl}, nil
}

// subscriptions returns the subscriptions a pub/sub source makes for a
// host at addrs (nudge.Address of its server, then of each group), each
// with the addresses it accepts: one per address when the URL template
// holds {server}, else one subscription accepting them all.
func (n nudgeSource) subscriptions(addrs []string) map[string][]string {
	if !n.tmpl.PerServer() {
		return map[string][]string{n.arg: addrs}
	}
	subs := map[string][]string{}
	for _, a := range addrs {
		subs[n.tmpl.Expand(a)] = []string{a}
	}
	return subs
}

// checkGroups checks group names: valid, each once.
func checkGroups(groups []string) error {
	for i, g := range groups {
		if err := manifest.CheckName("group", g); err != nil {
			return err
		}
		if slices.Contains(groups[:i], g) {
			return fmt.Errorf("group %s is named twice", g)
		}
	}
	return nil
}
