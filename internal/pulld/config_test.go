package pulld

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/internal/cli"
)

func TestConfigValidate(t *testing.T) {
	good := func() Config { return Config{Bucket: "mem://", Server: "web-1"} }
	for _, tc := range []struct {
		name   string
		modify func(*Config)
		err    string // "" for valid
	}{
		{"minimal", func(*Config) {}, ""},
		{"no bucket", func(c *Config) { c.Bucket = "" }, "-bucket"},
		{"no server", func(c *Config) { c.Server = "" }, "-server"},
		{"bad server", func(c *Config) { c.Server = "../x" }, "-server"},
		{"dry-run and terminate", func(c *Config) { c.DryRun, c.Terminate = true, true }, "exclude"},
		{"negative poll", func(c *Config) { c.Poll = -time.Second }, "-poll"},
		{"negative keep", func(c *Config) { c.Keep = -1 }, "-keep"},
		{"bad self", func(c *Config) { c.Self = "Pulld" }, "-self"},
		{"gce nudge", func(c *Config) { c.Nudge = []string{"gce", "gce:rev2"} }, ""},
		{"pubsub nudges", func(c *Config) { c.Nudge = []string{"mem://t", "nats://pushpull.nudge?natsv2=true"} }, ""},
		{"bad gce attribute", func(c *Config) { c.Nudge = []string{"gce:a/b"} }, "-nudge"},
		{"unknown nudge", func(c *Config) { c.Nudge = []string{"carrier-pigeon"} }, "-nudge"},
		{"nats queue refused", func(c *Config) { c.Nudge = []string{"nats://s?queue=q"} }, "-nudge"},
		{"per-server nudge", func(c *Config) { c.Nudge = []string{"nats://pushpull.{server}?natsv2=true"} }, ""},
		{"unknown placeholder", func(c *Config) { c.Nudge = []string{"nats://pushpull.{hostname}"} }, `-nudge "nats://pushpull.{hostname}"`},
		{"host placeholder", func(c *Config) { c.Nudge = []string{"nats://pushpull.{host}.{server}"} }, ""},
		{"per-server subject invalid for this server", func(c *Config) {
			c.Server, c.Nudge = "web.", []string{"nats://pushpull.{server}"}
		}, `"pushpull.web." has an empty token`},
		{"missing verify key", func(c *Config) { c.VerifyKeys = []string{"/nonexistent/key.pub"} }, "-verify-key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.modify(&c)
			err := c.Validate()
			if tc.err == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if !errors.Is(err, cli.ErrUsage) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Validate = %v, want cli.ErrUsage mentioning %q", err, tc.err)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := Config{Bucket: "mem://", Server: "web-1"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Root != DefaultRoot || c.Poll != DefaultPoll || c.Heartbeat != DefaultHeartbeat || c.Keep != DefaultKeep ||
		c.StepTimeout != DefaultStepTimeout || c.Grace != DefaultGrace || c.Self != DefaultSelf ||
		c.RetryMin != DefaultRetryMin || c.RetryMax != DefaultRetryMax || c.Listen != "" || c.HostInfo != "" {
		t.Errorf("defaults not applied: %+v", c)
	}
}

// TestParseNudge checks the parsed -nudge values of server web-1: a
// subscription URL has {server} expanded to web-1.
func TestParseNudge(t *testing.T) {
	for _, tc := range []struct{ in, kind, arg, name string }{
		{"gce", "gce", "pushrev", "gce"},
		{"gce:rev", "gce", "rev", "gce"},
		{"mem://topic", "pubsub", "mem://topic", "pubsub-mem"},
		{"nats://a.b?natsv2=true", "pubsub", "nats://a.b?natsv2=true", "pubsub-nats"},
		{"mem://nudge-{server}", "pubsub", "mem://nudge-web-1", "pubsub-mem"},
		{"nats://pushpull.{server}?natsv2=true", "pubsub", "nats://pushpull.web-1?natsv2=true", "pubsub-nats"},
		{"nats://{server}.{server}", "pubsub", "nats://web-1.web-1", "pubsub-nats"},
		{"gcppubsub://projects/p/subscriptions/{host}--{server}", "pubsub", "gcppubsub://projects/p/subscriptions/web-1--web-1", "pubsub-gcppubsub"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			n, err := parseNudge(tc.in, "web-1")
			if err != nil {
				t.Fatal(err)
			}
			if n.kind != tc.kind || n.arg != tc.arg || n.name() != tc.name {
				t.Errorf("parseNudge(%q) = %+v (%s)", tc.in, n, n.name())
			}
		})
	}
}

// TestSubscriptions checks the subscriptions a source makes for web-1 in
// group web: one per address with {server} (each host its own with {host}),
// one for all with neither.
func TestSubscriptions(t *testing.T) {
	addrs := []string{"web-1", "group-web"}
	for _, tc := range []struct {
		in   string
		want map[string][]string
	}{
		{"mem://shared", map[string][]string{"mem://shared": addrs}},
		{"nats://pushpull.{server}", map[string][]string{"nats://pushpull.web-1": {"web-1"}, "nats://pushpull.group-web": {"group-web"}}},
		{"gcppubsub://projects/p/subscriptions/{host}--{server}", map[string][]string{
			"gcppubsub://projects/p/subscriptions/web-1--web-1":     {"web-1"},
			"gcppubsub://projects/p/subscriptions/web-1--group-web": {"group-web"},
		}},
	} {
		n, err := parseNudge(tc.in, "web-1")
		if err != nil {
			t.Fatal(err)
		}
		if got := n.subscriptions(addrs); !maps.EqualFunc(got, tc.want, slices.Equal) {
			t.Errorf("%s: subscriptions %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestSchedule(t *testing.T) {
	for range 1000 {
		if d := initialDelay(time.Hour); d < 0 || d >= maxInitialDelay {
			t.Fatalf("initialDelay(1h) = %v", d)
		}
		if d := initialDelay(time.Second); d < 0 || d >= 100*time.Millisecond {
			t.Fatalf("initialDelay(1s) = %v", d)
		}
	}
	if d := initialDelay(0); d != 0 {
		t.Errorf("initialDelay(0) = %v", d)
	}
	for n, want := range map[int]time.Duration{1: time.Minute, 2: 2 * time.Minute, 3: 4 * time.Minute, 7: time.Hour, 100: time.Hour} {
		d := retryDelay(n, time.Minute, time.Hour)
		if d < want*8/10 || d > want*12/10 {
			t.Errorf("retryDelay(%d) = %v, want %v ±20%%", n, d, want)
		}
	}
}
