// Command package builds pushpull's programs as Debian packages, for hosts
// that get pulld from their base image as Skia's did:
//
//	go run ./tools/package [-out dist] [-commit SHA] [-programs pulld,pushui,release]
//
// (`make package`). pushpull-pulld holds /usr/bin/pulld, the systemd unit
// from deploy/pulld.service, /etc/default/pulld and /var/lib/pulld (0711);
// its postinst enables the unit. pushpull-pushui and pushpull-release hold
// their binary. Each package's tree stays in {out}/trees/{program}: `release
// -format deb -app pulld -dir dist/trees/pulld` publishes pulld's, which
// pulld then installs on itself (-self). The Debian version is the build
// time and commit (pkgformat.DebVersion), which pulld -version prints too.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pushpull/pushpull/internal/release"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("package", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := Config{Module: "."}
	var progs string
	fs.StringVar(&cfg.Out, "out", "dist", "`directory` for the .deb files and their trees")
	fs.StringVar(&cfg.Commit, "commit", "", "commit `SHA` of the source (default: the checkout's HEAD, dirty when it has changes)")
	fs.StringVar(&progs, "programs", "", "comma-separated `programs` to package (default: pulld, pushui, release)")
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if progs != "" {
		cfg.Programs = strings.Split(progs, ",")
	}
	if cfg.Commit == "" {
		g, err := release.ReadGit(ctx, cfg.Module) // dirty as release says it
		if err != nil {
			fmt.Fprintln(stderr, "package:", err, "(give -commit outside a checkout)")
			return 1
		}
		cfg.Commit, cfg.Dirty = g.Commit, g.Dirty
	}
	cfg.Built = time.Now().UTC()
	built, err := Build(ctx, cfg)
	for _, b := range built {
		fmt.Fprintln(stdout, b.Deb)
	}
	if err != nil {
		fmt.Fprintln(stderr, "package:", err)
		return 1
	}
	return 0
}
