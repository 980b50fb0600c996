package pushui

import (
	"github.com/pushpull/pushpull/internal/fleet"
)

// Nudger tells servers' pulld that their manifest changed, so they act
// within a second instead of at their next poll. *nudge.Nudger implements
// it. Nudge must be safe for concurrent use; a failed nudge is reported but
// never undoes a write (the host still picks the change up when it polls).
type Nudger = fleet.Nudger
