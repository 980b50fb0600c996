// Command pulld is the fleet daemon: it keeps this host serving what its
// manifest servers/{server}.json says, installing packages through their
// Teletraan deploy scripts, and reports back to status/{server}.json.
//
//	pulld -bucket URL [-server NAME] [-groups G,…] [-root DIR] [-once | -dry-run | -terminate]
//	      [-poll D] [-heartbeat D] [-listen ADDR] [-nudge SRC]… [-keep N]
//	      [-step-timeout D] [-grace D] [-retry-min D] [-retry-max D]
//	      [-verify-key FILE]… [-host-info FILE]
//	      [-self APP] [-apt-fix] [-log-level LEVEL]
//
// Exit status: 0 on a clean shutdown, a self-update, or (-once) when every
// env serves its manifest entry; 1 when an env failed or pulld could not
// start (such as another pulld holding the root); 2 on bad flags or an
// unusable manifest. See internal/pulld for the behaviour.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/pushpull/pushpull/internal/cli"
	"github.com/pushpull/pushpull/internal/pulld"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, runs pulld until SIGTERM or SIGINT (or once), and
// returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, level, err := parseFlags(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return cli.Exit(stderr, "pulld", err)
	}
	cfg.Out = stdout
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	return cli.Exit(stderr, "pulld", pulld.Run(ctx, cfg), pulld.ErrManifest)
}

// parseFlags turns the command line into a Config and a log level.
func parseFlags(args []string, stdout, stderr io.Writer) (pulld.Config, slog.Level, error) {
	fs := flag.NewFlagSet("pulld", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg        pulld.Config
		nudges     multiFlag
		verifyKeys multiFlag
		level      slog.Level
		showVers   bool
	)
	fs.StringVar(&cfg.Bucket, "bucket", "", "bucket `URL`: file:///dir, gs://bucket, s3://bucket?…, mem:// (required)")
	fs.StringVar(&cfg.Server, "server", "", "this host's server `name` (default: host= of -host-info, else the short hostname)")
	fs.StringVar(&cfg.Root, "root", pulld.DefaultRoot, "root `directory` of installed builds and state.json")
	fs.BoolVar(&cfg.Once, "once", false, "reconcile once and exit: 0 all serving, 1 some env failed, 2 bad flags or unusable manifest")
	fs.BoolVar(&cfg.DryRun, "dry-run", false, "print what a reconcile would do and change nothing")
	fs.BoolVar(&cfg.Terminate, "terminate", false, "run STOPPING for every env (host going away) and exit")
	fs.DurationVar(&cfg.Poll, "poll", pulld.DefaultPoll, "poll `period` of the manifest (±20% jitter)")
	fs.DurationVar(&cfg.Heartbeat, "heartbeat", 0, "longest `period` between status writes when nothing changes (default: the -poll period, so that every poll writes one)")
	fs.DurationVar(&cfg.RolloutHeartbeat, "rollout-heartbeat", pulld.DefaultRolloutHeartbeat, "poll and status heartbeat `period` while an entry is under a rollout")
	fs.StringVar(&cfg.Listen, "listen", pulld.DefaultListen, "`address` of /status, /healthz, /metrics and POST /nudge; empty for none")
	fs.Var(&nudges, "nudge", "nudge `source`, repeatable: gce, gce:ATTR, or a pub/sub subscription URL (mem://…, nats://subject?natsv2=true), in which {server} becomes -server, so that nats://pushpull.{server}?natsv2=true gives each host a subject of its own (recommended for large fleets)")
	fs.IntVar(&cfg.Keep, "keep", pulld.DefaultKeep, "builds kept per env, for rollbacks")
	fs.DurationVar(&cfg.StepTimeout, "step-timeout", pulld.DefaultStepTimeout, "timeout of one deploy script attempt")
	fs.DurationVar(&cfg.Grace, "grace", pulld.DefaultGrace, "on SIGTERM, how long a running script may go on")
	fs.DurationVar(&cfg.RetryMin, "retry-min", pulld.DefaultRetryMin, "first `delay` before retrying a failed env (doubling on each failure)")
	fs.DurationVar(&cfg.RetryMax, "retry-max", pulld.DefaultRetryMax, "longest `delay` between retries of a failed env")
	fs.Var(&verifyKeys, "verify-key", "minisign public key `file`, repeatable: install only packages one of them signed")
	fs.Func("groups", "comma-separated `groups` this host is in, whose groups/{group}.json it follows beside its own manifest (default: groups= of -host-info)", func(v string) error {
		cfg.Groups = []string{}
		for g := range strings.SplitSeq(v, ",") {
			if g = strings.TrimSpace(g); g != "" {
				cfg.Groups = append(cfg.Groups, g)
			}
		}
		return nil
	})
	fs.StringVar(&cfg.HostInfo, "host-info", pulld.DefaultHostInfo, "Teletraan host_info `file` (host, id, groups, compute_env_type); missing is fine")
	fs.StringVar(&cfg.ComputeEnvType, "compute-env-type", "", "COMPUTE_ENV_TYPE of the deploy scripts (default: compute_env_type of -host-info, else PRODUCTION)")
	fs.DurationVar(&cfg.Splay, "splay", 0, "with -once, wait a random `duration` up to this before the first request, so a fleet's cron jobs spread out")
	fs.StringVar(&cfg.Self, "self", pulld.DefaultSelf, "`app` name of pulld's own package: pulld exits after updating it")
	fs.BoolVar(&cfg.AptFix, "apt-fix", false, "when dpkg -i of a .deb fails, run apt-get -f install to bring in what it depends on")
	fs.TextVar(&level, "log-level", slog.LevelInfo, "log `level`: debug, info, warn, error")
	fs.BoolVar(&showVers, "version", false, "print the version and exit")
	if err := cli.Parse(fs, args); err != nil {
		return cfg, level, err
	}
	if showVers {
		fmt.Fprintln(stdout, "pulld", pulld.VersionString())
		return cfg, level, flag.ErrHelp
	}
	cfg.Nudge = nudges
	cfg.VerifyKeys = verifyKeys
	if cfg.Server == "" {
		cfg.Server = pulld.DefaultServer(cfg.HostInfo)
	}
	return cfg, level, nil
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

func (m *multiFlag) Set(s string) error {
	*m = append(*m, s)
	return nil
}
