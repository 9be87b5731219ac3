package task

import (
	"strconv"
	"strings"

	"github.com/gaia-platform/gaia/internal/domainerr"
)

// ClaimToken fences every call about one claim: the task and the attempt the
// claim started. A later claim of the same task has a higher attempt.
type ClaimToken struct {
	TaskID  string
	Attempt int
}

// String is the token as clients see it.
func (c ClaimToken) String() string { return c.TaskID + "." + strconv.Itoa(c.Attempt) }

// ParseClaimToken reads a token for taskID.
func ParseClaimToken(taskID, s string) (ClaimToken, error) {
	id, n, ok := strings.Cut(s, ".")
	attempt, err := strconv.Atoi(n)
	if !ok || err != nil || attempt < 1 || id != taskID {
		return ClaimToken{}, domainerr.Invalid("claim_token", "is not a claim token of this task")
	}
	return ClaimToken{TaskID: id, Attempt: attempt}, nil
}

// ClaimTokenOf mints the token of t's current claim: t as the claim left it,
// claimed at its latest attempt.
func ClaimTokenOf(t Task) ClaimToken { return ClaimToken{TaskID: t.ID, Attempt: t.Attempt} }
