// Command pushctl is the operator's command line over pushui's API:
// rollouts started, followed and steered, deploys, and what the hosts
// report, with exit statuses a CI job can gate on (pushctl help).
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/term"

	"github.com/pushpull/pushpull/internal/pushctl"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := pushctl.Config{Args: os.Args[1:], Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv,
		Terminal: term.IsTerminal(int(os.Stdout.Fd()))}
	return pushctl.ExitCode(os.Stderr, pushctl.Run(ctx, cfg))
}
