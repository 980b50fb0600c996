package main

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/internal/pulld"
)

func TestParseFlags(t *testing.T) {
	var out, errs bytes.Buffer
	cfg, level, err := parseFlags([]string{
		"-bucket", "file:///b", "-server", "web-1", "-root", "/r", "-once", "-poll", "1m",
		"-heartbeat", "10m", "-listen", ":1", "-nudge", "gce", "-nudge", "mem://t", "-keep", "3",
		"-step-timeout", "5m", "-grace", "7s", "-verify-key", "/k.pub", "-verify-key", "/k2.pub", "-host-info", "/hi",
		"-self", "me", "-log-level", "debug", "-retry-min", "30s", "-retry-max", "2h", "-apt-fix",
	}, &out, &errs)
	if err != nil {
		t.Fatal(err)
	}
	want := pulld.Config{
		Bucket: "file:///b", Server: "web-1", Root: "/r", Once: true, Poll: time.Minute,
		Heartbeat: 10 * time.Minute, Listen: ":1", Nudge: []string{"gce", "mem://t"}, Keep: 3,
		StepTimeout: 5 * time.Minute, Grace: 7 * time.Second, VerifyKeys: []string{"/k.pub", "/k2.pub"}, HostInfo: "/hi", Self: "me",
		RetryMin: 30 * time.Second, RetryMax: 2 * time.Hour, AptFix: true,
	}
	if cfg.Bucket != want.Bucket || cfg.Server != want.Server || cfg.Root != want.Root || cfg.Once != want.Once ||
		cfg.Poll != want.Poll || cfg.Heartbeat != want.Heartbeat || cfg.Listen != want.Listen ||
		!slices.Equal(cfg.Nudge, want.Nudge) || cfg.Keep != want.Keep || cfg.StepTimeout != want.StepTimeout ||
		cfg.Grace != want.Grace || !slices.Equal(cfg.VerifyKeys, want.VerifyKeys) || cfg.HostInfo != want.HostInfo || cfg.Self != want.Self ||
		cfg.RetryMin != want.RetryMin || cfg.RetryMax != want.RetryMax || cfg.AptFix != want.AptFix {
		t.Errorf("config = %+v\nwant %+v", cfg, want)
	}
	if level.String() != "DEBUG" {
		t.Errorf("level = %v", level)
	}
}

func TestFlagDefaults(t *testing.T) {
	var out, errs bytes.Buffer
	cfg, _, err := parseFlags([]string{"-bucket", "mem://", "-host-info", "/nonexistent"}, &out, &errs)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Root != pulld.DefaultRoot || cfg.Poll != pulld.DefaultPoll || cfg.Listen != pulld.DefaultListen ||
		cfg.Keep != pulld.DefaultKeep || cfg.StepTimeout != pulld.DefaultStepTimeout || cfg.Self != "pulld" ||
		cfg.RetryMin != pulld.DefaultRetryMin || cfg.RetryMax != pulld.DefaultRetryMax || cfg.AptFix {
		t.Errorf("defaults = %+v", cfg)
	}
	if cfg.Server == "" || strings.Contains(cfg.Server, ".") {
		t.Errorf("default server %q, want the short hostname", cfg.Server)
	}
}

func TestBadFlagsExit2(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"unknown flag", []string{"-nope"}, "flag provided but not defined"},
		{"no bucket", []string{"-server", "web-1", "-once"}, "-bucket is required"},
		{"bad server", []string{"-bucket", "mem://", "-server", "Web_1", "-once"}, "-server"},
		{"bad duration", []string{"-bucket", "mem://", "-poll", "soon"}, "invalid value"},
		{"negative retry", []string{"-bucket", "mem://", "-server", "web-1", "-retry-min", "-1s"}, "-retry-min"},
		{"bad nudge", []string{"-bucket", "mem://", "-server", "web-1", "-nudge", "smoke-signal"}, "-nudge"},
		{"extra argument", []string{"-bucket", "mem://", "-server", "web-1", "now"}, "unexpected arguments"},
		{"dry-run and terminate", []string{"-bucket", "mem://", "-server", "web-1", "-dry-run", "-terminate"}, "exclude"},
		{"bad bucket URL", []string{"-bucket", "nope://x", "-server", "web-1", "-once", "-root", "ROOT"}, "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := slices.Clone(tc.args)
			for i, a := range args {
				if a == "ROOT" {
					args[i] = t.TempDir()
				}
			}
			var out, errs bytes.Buffer
			if code := run(args, &out, &errs); code != 2 {
				t.Fatalf("exit %d, want 2; stderr:\n%s", code, errs.String())
			}
			if !strings.Contains(errs.String(), tc.msg) {
				t.Errorf("stderr lacks %q:\n%s", tc.msg, errs.String())
			}
		})
	}
}

func TestVersionAndHelp(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run([]string{"-version"}, &out, &errs); code != 0 || !strings.HasPrefix(out.String(), "pulld ") {
		t.Errorf("-version: exit %d, stdout %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"-h"}, &out, &errs); code != 0 || !strings.Contains(errs.String(), "-nudge source") {
		t.Errorf("-h: exit %d, stderr %q", code, errs.String())
	}
}

// TestHeartbeatFollowsPoll checks that -heartbeat, when not given, is the
// -poll period pulld runs with, so that its status says when to expect the
// next write (poll_seconds): -poll 30s writes every 30 s, not every 5 min.
func TestHeartbeatFollowsPoll(t *testing.T) {
	for _, tc := range []struct {
		name            string
		args            []string
		poll, heartbeat time.Duration
	}{
		{"defaults", nil, pulld.DefaultPoll, pulld.DefaultHeartbeat},
		{"-poll 30s", []string{"-poll", "30s"}, 30 * time.Second, 30 * time.Second},
		{"-poll 30s -heartbeat 10m", []string{"-poll", "30s", "-heartbeat", "10m"}, 30 * time.Second, 10 * time.Minute},
		{"-heartbeat 1m", []string{"-heartbeat", "1m"}, pulld.DefaultPoll, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			args := append([]string{"-bucket", "mem://", "-server", "web-1", "-host-info", "/nonexistent"}, tc.args...)
			cfg, _, err := parseFlags(args, &out, &errs)
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			if cfg.Poll != tc.poll || cfg.Heartbeat != tc.heartbeat {
				t.Errorf("poll %v, heartbeat %v; want %v, %v", cfg.Poll, cfg.Heartbeat, tc.poll, tc.heartbeat)
			}
		})
	}
}
