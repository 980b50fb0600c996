// Command release packages a build directory into the bucket as an
// immutable package, with its metadata, sha256 and optional signature, and
// can point servers at it (Teletraan's auto-deploy to staging).
//
//	release -bucket URL -app NAME [-create] [-dir DIR] [-note T] [-commit SHA]
//	        [-branch B] [-repo R] [-format tar.zst|tar.gz|deb] [-sign-key FILE]
//	        [-deploy SERVER,…] [-deploy-group GROUP,…] [-rollout GROUP,…]
//	        [-nudge-topic URL] [-nudge-url TEMPLATE] [-nudge-gce PROJECT/ZONE]
//	        [-o text|json]
//	release -list -bucket URL -app NAME
//	release -import-skia URL -bucket URL [-create]
//
// The package name is the first line on stdout, followed by one line
// "rollout GROUP ID" for each rollout -rollout started. With -o json stdout
// is instead one JSON object:
//
//	{
//	  "package": "hello/hello-20261207T101500Z-0123456789ab.tar.zst",
//	  "sha256": "…",
//	  "signed": false,
//	  "deployed": [{"kind": "server", "name": "web-1"}, {"kind": "group", "name": "canary"}],
//	  "rollouts": [{"group": "web", "env": "hello", "id": "20261207t101500-1a2b3c"}]
//	}
//
// with "error" added when a deploy or rollout failed after the package was
// stored (see release.JSONResult). Progress goes to stderr when it is a
// terminal; otherwise stderr gets one summary line. An encrypted signing
// key's password is read from $PUSHPULL_SIGN_PASSWORD.
//
// A file:// bucket must be an existing directory, as for pulld and pushui,
// unless -create is given: then a missing one is made (a first release, or
// -import-skia, into a new bucket), and the log says so.
//
// Exit status: 0 on success; 1 when the tree is invalid, the package exists,
// the bucket directory does not exist, the upload failed, -list finds no
// packages of the app, or (the package stored and named on stdout) a
// server's manifest could not be updated or a rollout not started; 2 on
// bad flags. See internal/release.
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
	"syscall"

	"github.com/pushpull/pushpull/internal/cli"
	"github.com/pushpull/pushpull/internal/nudge"
	"github.com/pushpull/pushpull/internal/release"
	"github.com/pushpull/pushpull/manifest"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, releases (or lists) until done or interrupted, and
// returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return cli.Exit(stderr, "release", err)
	}
	cfg.Out = stdout
	cfg.Summary = stderr
	if isTerminal(stderr) {
		cfg.Progress = stderr
	}
	cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	_, err = release.Run(ctx, cfg)
	return cli.Exit(stderr, "release", err)
}

// parseFlags turns the command line into a Config.
func parseFlags(args []string, stderr io.Writer) (release.Config, error) {
	fs := flag.NewFlagSet("release", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: release -bucket URL -app NAME [-create] [-dir DIR] [-note T] [-commit SHA] [-branch B] [-repo R]
               [-format tar.zst|tar.gz|deb] [-sign-key FILE] [-deploy SERVER,…] [-deploy-group GROUP,…] [-rollout GROUP,…]
               [-o text|json]
       release -list -bucket URL -app NAME
       release -import-skia URL -bucket URL [-create]

Packages DIR into the bucket and prints the package name as the first line,
then "rollout GROUP ID" for each rollout started (-o json: one JSON object).
`)
		fs.PrintDefaults()
	}
	var (
		cfg                            release.Config
		format, output                 string
		deploy, deployGroups, rollouts string
	)
	env := nudge.FromEnv()
	fs.StringVar(&cfg.Bucket, "bucket", "", "bucket `URL`: file:///dir, gs://bucket, s3://bucket?…, mem:// (required); a file:// directory must exist unless -create")
	fs.BoolVar(&cfg.Create, "create", false, "make the -bucket file:// directory when it does not exist: the first release (or -import-skia) into a new bucket; without it a missing directory is refused, since it is most often a typo")
	fs.StringVar(&output, "o", "text", "stdout `format`: text (the package name, then \"rollout GROUP ID\" for each rollout started) or json (one object: package, sha256, signed, deployed [{kind, name}], rollouts [{group, env, id}], and error when a deploy or rollout failed after the upload)")
	fs.StringVar(&cfg.App, "app", "", "app `name` (required)")
	fs.StringVar(&cfg.Dir, "dir", ".", "build `directory` to package")
	fs.StringVar(&cfg.Note, "note", "", "free `text` stored with the package")
	fs.StringVar(&cfg.Commit, "commit", "", "commit `SHA` (default: HEAD of DIR's git repository; required outside one)")
	fs.StringVar(&cfg.Branch, "branch", "", "`branch` (default: DIR's current git branch)")
	fs.StringVar(&cfg.Repo, "repo", "", "repository `URL` (default: DIR's git remote origin, without credentials)")
	fs.StringVar(&format, "format", string(manifest.FormatZstd), "package `format`: tar.zst, tar.gz or deb (a Debian package of the tree as its file system image, with debian/ for maintainer scripts and control fields)")
	fs.StringVar(&cfg.SignKey, "sign-key", "", "minisign secret key `file` to sign the package with (password in $"+release.PasswordEnv+")")
	fs.StringVar(&deploy, "deploy", "", "comma-separated `servers` to point at the new package")
	fs.StringVar(&rollouts, "rollout", "", "comma-separated `groups` to start a rollout of the new package on, with each group's strategy from the push config's rollouts (pushui drives it)")
	fs.StringVar(&deployGroups, "deploy-group", "", "comma-separated `groups` to point at the new package (one write per group, whatever its size)")
	fs.StringVar(&cfg.Nudge.Topic, "nudge-topic", env.Topic, "pub/sub topic `URL` to nudge deployed servers on; {server} in it becomes each server's name, for a topic per server (recommended for large fleets), e.g. nats://pushpull.{server}?natsv2=true (default $"+nudge.EnvTopic+")")
	fs.StringVar(&cfg.Nudge.URL, "nudge-url", env.URL, "HTTP nudge URL `template`, e.g. http://{server}:8080/nudge (default $"+nudge.EnvURL+")")
	fs.StringVar(&cfg.Nudge.GCE, "nudge-gce", env.GCE, "nudge deployed servers by setting the metadata pushrev of the GCE instances of their name in `PROJECT/ZONE`, with Application Default Credentials (default $"+nudge.EnvGCE+")")
	fs.BoolVar(&cfg.List, "list", false, "list the app's packages, newest first, instead of releasing; an app with none is an error naming the apps the bucket has")
	fs.StringVar(&cfg.ImportSkia, "import-skia", "", "instead of releasing, import the Skia push bucket at `URL` (debs/, server/) into -bucket: packages, server manifests and, when -bucket has none, a push config; nothing in URL is modified")
	fs.BoolVar(&cfg.AllowUnconditionalStore, "allow-unconditional-store", false, "write to an S3 store that ignores If-Match/If-None-Match (refused by default: concurrent edits would be lost); safe only with a single writer")
	if err := cli.Parse(fs, args); err != nil {
		return cfg, err
	}
	f, err := manifest.ParseFormat(format)
	if err != nil {
		return cfg, fmt.Errorf("release: %w: -format: %w", cli.ErrUsage, err)
	}
	cfg.Format = f
	switch output {
	case "text":
	case "json":
		cfg.JSON = true
	default:
		return cfg, fmt.Errorf("release: %w: -o %q: want text or json", cli.ErrUsage, output)
	}
	if cfg.Deploy, err = release.ParseServers(deploy); err != nil {
		return cfg, fmt.Errorf("release: %w: -deploy: %w", cli.ErrUsage, err)
	}
	if cfg.DeployGroups, err = release.ParseGroups(deployGroups); err != nil {
		return cfg, fmt.Errorf("release: %w: -deploy-group: %w", cli.ErrUsage, err)
	}
	if cfg.Rollouts, err = release.ParseGroups(rollouts); err != nil {
		return cfg, fmt.Errorf("release: %w: -rollout: %w", cli.ErrUsage, err)
	}
	cfg.SignPassword = os.Getenv(release.PasswordEnv)
	return cfg, nil
}

// isTerminal reports whether w is a character device, such as a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
