package ops

import (
	"errors"
	"fmt"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/internal/rollout"
	"github.com/pushpull/pushpull/manifest"
)

// RolloutError maps the rollout driver's errors to pushui's kinds, which
// failErr and apiFail answer: errState (409) for a command the rollout's
// state refuses or a second active rollout, errUnknown (404) for no such
// rollout, bad input (400) for a bad strategy or name or one the push
// config refuses.
func RolloutError(err error) error {
	switch {
	case errors.Is(err, rollout.ErrActive), errors.Is(err, rollout.ErrNotActive), errors.Is(err, rollout.ErrInvalid),
		errors.Is(err, fleet.ErrRolloutActive):
		return fmt.Errorf("%w: %w", ErrState, err)
	case errors.Is(err, blobstore.ErrNotFound):
		return fmt.Errorf("%w: %w", ErrUnknown, err)
	case errors.Is(err, rollout.ErrStrategy), errors.Is(err, manifest.ErrInvalidName),
		errors.Is(err, fleet.ErrNotAllowed), errors.Is(err, fleet.ErrNoPackage):
		return BadInput("%v", err)
	}
	return err
}

// InputError is a request the user can fix: handlers answer 400 with its
// message.
type InputError struct{ msg string }

func (e *InputError) Error() string { return e.msg }

func BadInput(format string, args ...any) error {
	return &InputError{msg: fmt.Sprintf(format, args...)}
}

// ErrBrokenManifest is wrapped when the manifest in the bucket does not
// parse: pushui edits nothing on top of it (a PUT of a whole manifest
// replaces it).
var ErrBrokenManifest = errors.New("the manifest in the bucket is invalid")

// ErrState is wrapped when what is asked does not fit the state of what
// it acts on (a second active rollout, pausing a finished one): 409.
var ErrState = errors.New("not in this state")

// ErrUnknown is wrapped when a server or group is neither configured nor
// in the bucket (nor, for a group, named by a host).
var ErrUnknown = errors.New("not known to pushui")
