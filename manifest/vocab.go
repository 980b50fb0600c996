package manifest

import (
	"fmt"
	"slices"
	"strings"
)

// Step is a step of the deploy cycle on a host, in Teletraan's
// vocabulary: what DEPLOY_STEP says to a script, and what a status and an
// outcome report as the step reached or the step that failed.
type Step string

// The steps, in the order a deploy takes them. Six of them run the
// build's script of the same name (pkgformat.Scripts); STOPPING runs when
// an env is removed.
const (
	StepPreDownload  Step = "PRE_DOWNLOAD"
	StepDownloading  Step = "DOWNLOADING"
	StepPostDownload Step = "POST_DOWNLOAD"
	StepStaging      Step = "STAGING"
	StepPreRestart   Step = "PRE_RESTART"
	StepRestarting   Step = "RESTARTING"
	StepPostRestart  Step = "POST_RESTART"
	StepServing      Step = Step(StateServing) // the cycle's end: the build serves
	StepStopping     Step = "STOPPING"
)

var steps = []Step{StepPreDownload, StepDownloading, StepPostDownload, StepStaging, StepPreRestart, StepRestarting, StepPostRestart, StepServing, StepStopping}

// Valid reports whether s is one of the steps.
func (s Step) Valid() bool { return slices.Contains(steps, s) }

// Action is what a host does to an env.
type Action string

// The actions. A status reports deploy, rollback, restart or stop (and
// stage for a build unpacked for a later switch); none is a plan's only.
const (
	ActionNone     Action = "none"     // the env already serves its entry
	ActionDeploy   Action = "deploy"   // install (or finish installing) the entry's package
	ActionRollback Action = "rollback" // switch back to an older build kept on disk: no download
	ActionRestart  Action = "restart"  // same build, new config or restart token
	ActionStop     Action = "stop"     // STOPPING, then no build serves
	ActionStage    Action = "stage"    // download and unpack a build for a later switch
)

var actions = []Action{ActionNone, ActionDeploy, ActionRollback, ActionRestart, ActionStop, ActionStage}

// Valid reports whether a is one of the actions.
func (a Action) Valid() bool { return slices.Contains(actions, a) }

var states = []State{StateUnknown, StateDeploying, StateServing, StateFailed, StateRolledBack, StateStopped}

// Valid reports whether s is one of the states.
func (s State) Valid() bool { return slices.Contains(states, s) }

// EntrySource says where an env's desired entry came from, as a status
// reports it: SourceServer for the host's own manifest, "group:NAME" for a
// group's (Target.Source).
type EntrySource string

// SourceServer is the host's own manifest.
const SourceServer EntrySource = "server"

// ParseEntrySource returns the manifest s names: the server's own (with an
// empty Name: the caller knows which server) or a group's. Anything else
// is an error wrapping ErrInvalidName.
func ParseEntrySource(s EntrySource) (Target, error) {
	if s == SourceServer {
		return Server(""), nil
	}
	g, ok := strings.CutPrefix(string(s), "group:")
	if !ok {
		return Target{}, fmt.Errorf("source %q: want %q or group:NAME: %w", s, SourceServer, ErrInvalidName)
	}
	if err := CheckName("group", g); err != nil {
		return Target{}, fmt.Errorf("source %q: %w", s, err)
	}
	return Group(g), nil
}

// checkVocabulary reports the first word of s that is not in the
// vocabulary above: a state, step, action or source a status names must be
// one pushpull defines (or be left out), so that what readers show and
// link to is what pulld meant.
func (s *Status) checkVocabulary() error {
	word := func(env, what string, ok bool, v any) error {
		if ok {
			return nil
		}
		return fmt.Errorf("env %s: %s %q is not one pushpull knows", env, what, v)
	}
	for _, e := range s.Envs {
		if err := word(e.Env, "state", e.State == "" || e.State.Valid(), e.State); err != nil {
			return err
		}
		if err := word(e.Env, "step", e.Step == "" || e.Step.Valid(), e.Step); err != nil {
			return err
		}
		if err := word(e.Env, "action", e.Action == "" || e.Action.Valid(), e.Action); err != nil {
			return err
		}
		if e.Source != "" {
			if _, err := ParseEntrySource(e.Source); err != nil {
				return fmt.Errorf("env %s: %w", e.Env, err)
			}
		}
		for _, o := range e.Recent {
			if err := word(e.Env, "outcome state", o.State == "" || o.State.Valid(), o.State); err != nil {
				return err
			}
			if err := word(e.Env, "outcome step", o.Step == "" || o.Step.Valid(), o.Step); err != nil {
				return err
			}
			if err := word(e.Env, "outcome action", o.Action == "" || o.Action.Valid(), o.Action); err != nil {
				return err
			}
		}
	}
	return nil
}
