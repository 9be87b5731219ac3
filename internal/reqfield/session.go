package reqfield

import "github.com/gaia-platform/gaia/internal/domainerr"

// MaxSessionIDLen bounds session_id in every request that names a session.
const MaxSessionIDLen = 64

// SessionRef checks the session_id and session_token pair an agent session
// sends to prove who it is (to the coordinator, and to the task queue, which
// passes them on). It checks shape only; whether the pair is valid is the
// coordinator's call.
func SessionRef(id, token string) error {
	switch {
	case id == "":
		return domainerr.Invalid("session_id", "must not be empty")
	case TooLong(id, MaxSessionIDLen):
		return domainerr.Invalid("session_id", "must be at most 64 characters")
	case token == "":
		return domainerr.Invalid("session_token", "must not be empty")
	}
	if err := Text("session_id", id); err != nil {
		return err
	}
	return Text("session_token", token)
}
