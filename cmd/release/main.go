// Command release packages a build directory into the bucket as an
// immutable package, with its metadata, sha256 and optional signature, and
// can point servers at it (Teletraan's auto-deploy to staging).
//
//	release -bucket URL -app NAME [-dir DIR] [-note T] [-commit SHA]
//	        [-branch B] [-repo R] [-format tar.zst|tar.gz|deb] [-sign-key FILE]
//	        [-deploy SERVER,…] [-nudge-topic URL] [-nudge-url TEMPLATE]
//	        [-nudge-gce PROJECT/ZONE]
//	release -list -bucket URL -app NAME
//	release -import-skia URL -bucket URL
//
// The package name is the last line on stdout. Progress goes to stderr when
// it is a terminal; otherwise stderr gets one summary line. An encrypted
// signing key's password is read from $PUSHPULL_SIGN_PASSWORD.
//
// Exit status: 0 on success; 1 when the tree is invalid, the package exists,
// the upload failed, or (the package stored and named on stdout) a server's
// manifest could not be updated; 2 on bad flags. See internal/release.
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
		fmt.Fprint(stderr, `usage: release -bucket URL -app NAME [-dir DIR] [-note T] [-commit SHA] [-branch B] [-repo R]
               [-format tar.zst|tar.gz|deb] [-sign-key FILE] [-deploy SERVER,…] [-deploy-group GROUP,…] [-rollout GROUP,…]
       release -list -bucket URL -app NAME
       release -import-skia URL -bucket URL

Packages DIR into the bucket and prints the package name as the last line.
`)
		fs.PrintDefaults()
	}
	var (
		cfg                            release.Config
		format                         string
		deploy, deployGroups, rollouts string
	)
	env := nudge.FromEnv()
	fs.StringVar(&cfg.Bucket, "bucket", "", "bucket `URL`: file:///dir, gs://bucket, s3://bucket?…, mem:// (required)")
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
	fs.BoolVar(&cfg.List, "list", false, "list the app's packages, newest first, instead of releasing")
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
