// Package pushctl is the operator's command line over pushui's API
// (package client): start, follow and steer rollouts, deploy, and read
// what the hosts report, from a terminal or a CI job.
//
// Run's error decides the exit status (ExitCode), so that a pipeline can
// gate on it: 0 the rollout succeeded (or the command did what it was
// asked), 1 it failed, was reverted or aborted, 2 a usage error or input
// pushui refused, 3 -timeout was reached (a paused rollout included), 4
// credentials are missing or refused. Without a terminal the output is one
// plain line per change, with no carriage returns and no escape codes.
package pushctl
