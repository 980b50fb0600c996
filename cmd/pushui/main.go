// Command pushui is pushpull's web UI and JSON API: pick which version of
// each app every server runs, and see what the servers actually run.
//
//	pushui -bucket URL [-config FILE] [-addr 127.0.0.1:8000]
//	       [-auth-header H | -htpasswd FILE] [-admins a,b]
//	       [-nudge-topic URL] [-nudge-url TEMPLATE] [-nudge-gce PROJECT/ZONE]
//	       [-refresh D]
//
// It listens on loopback unless authentication is configured. See package
// github.com/pushpull/pushpull/internal/pushui for the routes.
package main

import (
	"bufio"
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
	"time"

	"golang.org/x/term"

	"github.com/pushpull/pushpull/internal/cli"
	"github.com/pushpull/pushpull/internal/nudge"
	"github.com/pushpull/pushpull/internal/pushui"
	"github.com/pushpull/pushpull/internal/pushui/auth"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// run parses args, serves until SIGINT or SIGTERM, and returns the exit
// code: 0 after a clean shutdown, 1 when serving failed, 2 for bad usage.
// With -hash-password it prints an htpasswd line instead, the password
// read from stdin (without echo on a terminal).
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	env := nudge.FromEnv()
	fs := flag.NewFlagSet("pushui", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg pushui.Config
	var admins string
	fs.StringVar(&cfg.Bucket, "bucket", "", "bucket `URL` (file:///dir, gs://b, s3://b?…)")
	fs.StringVar(&cfg.ConfigFile, "config", "", "push config `FILE` (which apps may go on which servers, and groups) to write to the bucket's config/push.json when it holds none; the bucket's is the one obeyed")
	fs.BoolVar(&cfg.AllowUnconditionalStore, "allow-unconditional-store", false, "start on an S3 store that ignores If-Match/If-None-Match (refused by default: concurrent edits would be lost); safe only with a single writer")
	fs.StringVar(&cfg.Addr, "addr", pushui.DefaultAddr, "listen `address`; anything but loopback needs -auth-header or -htpasswd")
	fs.StringVar(&cfg.AuthHeader, "auth-header", "", "trust this request `header` for the user's identity (e.g. X-Forwarded-Email behind oauth2-proxy or IAP)")
	var trusted string
	fs.StringVar(&trusted, "trusted-proxy", "", "with -auth-header: the `CIDR[,CIDR…]` of the auth proxy; requests from any other peer are refused (required off loopback)")
	fs.StringVar(&cfg.IAPAudience, "iap-audience", "", "verify Google Identity-Aware Proxy's signed header x-goog-iap-jwt-assertion for this `audience` (/projects/NUMBER/global/backendServices/ID); the user is its email")
	fs.StringVar(&cfg.HtpasswdFile, "htpasswd", "", "require HTTP Basic auth against this htpasswd `FILE` (bcrypt hashes: htpasswd -B)")
	fs.StringVar(&admins, "admins", "", "comma-separated `users` who may change manifests; others may only look")
	fs.StringVar(&cfg.NudgeTopic, "nudge-topic", env.Topic, "pub/sub topic `URL` to nudge servers on; {server} in it becomes each server's name, for a topic per server (recommended for large fleets), e.g. nats://pushpull.{server}?natsv2=true (default $"+nudge.EnvTopic+")")
	fs.StringVar(&cfg.NudgeURL, "nudge-url", env.URL, "HTTP nudge URL `template`, e.g. http://{server}:8080/nudge (default $"+nudge.EnvURL+")")
	fs.StringVar(&cfg.NudgeGCE, "nudge-gce", env.GCE, "nudge servers by setting the metadata pushrev of the GCE instances of their name in `PROJECT/ZONE`, with Application Default Credentials (default $"+nudge.EnvGCE+")")
	fs.DurationVar(&cfg.Refresh, "refresh", time.Minute, "list the bucket again in the background this often (0: only on the refresh button)")
	hashUser := fs.String("hash-password", "", "print an htpasswd line (bcrypt) for `USER` and exit, the password read from the terminal without echo, or from the first line of stdin; for -htpasswd where htpasswd -B is missing")
	fs.DurationVar(&cfg.RolloutTick, "rollout-tick", pushui.DefaultRolloutTick, "move the running rollouts this often; a replica holds a rollout for six ticks, after which another replica takes it over")
	if err := cli.Parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return cli.Exit(stderr, "pushui", err)
	}
	if *hashUser != "" {
		return cli.Exit(stderr, "pushui", hashPassword(*hashUser, stdin, stdout, stderr))
	}
	for _, a := range strings.Split(admins, ",") {
		if a = strings.TrimSpace(a); a != "" {
			cfg.Admins = append(cfg.Admins, a)
		}
	}
	var err error
	if cfg.TrustedProxies, err = auth.ParseTrustedProxies(trusted); err != nil {
		return cli.Exit(stderr, "pushui", fmt.Errorf("pushui: %w: -trusted-proxy: %v", cli.ErrUsage, err))
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return cli.Exit(stderr, "pushui", pushui.Run(ctx, cfg))
}

// hashPassword prints user's htpasswd line, with the password read from
// stdin: from the terminal without echo (asked twice), else its first line.
func hashPassword(user string, stdin io.Reader, stdout, stderr io.Writer) error {
	var pw []byte
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(stderr, "password for %s: ", user)
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return fmt.Errorf("pushui: read password: %w", err)
		}
		fmt.Fprintf(stderr, "again: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return fmt.Errorf("pushui: read password: %w", err)
		}
		if string(p1) != string(p2) {
			return fmt.Errorf("pushui: %w: the two passwords differ", cli.ErrUsage)
		}
		pw = p1
	} else {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("pushui: read password from stdin: %w", err)
		}
		pw = []byte(strings.TrimRight(line, "\r\n"))
	}
	line, err := auth.HtpasswdLine(user, pw)
	if err != nil {
		return fmt.Errorf("pushui: %w: %w", cli.ErrUsage, err)
	}
	_, err = fmt.Fprintln(stdout, line)
	return err
}
