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

// ParseClaimToken reads a token for taskID. Only the exact form String
// writes is accepted: "<task_id>.<attempt>" with the attempt in plain
// decimal, so that no other spelling ("1.+1", "1.01") fences the same claim.
func ParseClaimToken(taskID, s string) (ClaimToken, error) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return ClaimToken{}, errNotAClaimToken
	}
	id, n := s[:i], s[i+1:]
	attempt, err := strconv.Atoi(n)
	if err != nil || attempt < 1 || id != taskID || strconv.Itoa(attempt) != n {
		return ClaimToken{}, errNotAClaimToken
	}
	return ClaimToken{TaskID: id, Attempt: attempt}, nil
}

var errNotAClaimToken = domainerr.Invalid("claim_token", "is not a claim token of this task")

// ClaimTokenOf mints the token of t's current claim: t as the claim left it,
// claimed at its latest attempt.
func ClaimTokenOf(t Task) ClaimToken { return ClaimToken{TaskID: t.ID, Attempt: t.Attempt} }
