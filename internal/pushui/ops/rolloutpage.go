package ops

import (
	"errors"
	"fmt"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/internal/rollout"
	"github.com/pushpull/pushpull/manifest"
)

// rolloutError maps the rollout driver's errors to pushui's kinds, which
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
