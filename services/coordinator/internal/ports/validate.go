package ports

import (
	"fmt"
	"net"
	"regexp"
	"time"

	"github.com/gaia-platform/gaia/internal/domainerr"
	"github.com/gaia-platform/gaia/internal/reqfield"
	"github.com/gaia-platform/gaia/internal/window"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/internal/app"
)

// Bounds on what clients may send.
const (
	maxNameLen       = 128
	maxLabels        = 32
	maxLabelKeyLen   = 63
	maxLabelValueLen = 256
	maxActivityLen   = 256
	maxWindows       = 16
	maxTasksPerSess  = 1000
	minLockTTL       = time.Second
	maxLockTTL       = 24 * time.Hour
	maxLockWait      = 5 * time.Minute
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

func validateName(field, name string) error {
	switch {
	case name == "":
		return domainerr.Invalid(field, "must not be empty")
	case reqfield.TooLong(name, maxNameLen):
		return domainerr.Invalid(field, fmt.Sprintf("must be at most %d characters", maxNameLen))
	case !nameRE.MatchString(name):
		return domainerr.Invalid(field, "may hold only letters, digits, '.', '_' and '-'")
	}
	return nil
}

func registerInput(req *coordinatorv1.RegisterSessionRequest) (app.RegisterInput, error) {
	in := app.RegisterInput{Name: req.GetName(), Labels: req.GetLabels(), JoinSecret: req.GetJoinSecret()}
	if err := validateName("name", in.Name); err != nil {
		return in, err
	}
	var ok bool
	if in.Tier, ok = tierToState[req.GetTier()]; !ok {
		return in, domainerr.Invalid("tier", "must be one of high_level, manager, worker")
	}
	if in.Provider, ok = providerToState[req.GetProvider()]; !ok {
		return in, domainerr.Invalid("provider", "must be one of claude, codex, ollama, openai, gemini, other")
	}
	in.MaxConcurrentTasks = int(req.GetMaxConcurrentTasks())
	if in.MaxConcurrentTasks == 0 {
		in.MaxConcurrentTasks = 1
	}
	if in.MaxConcurrentTasks < 1 || in.MaxConcurrentTasks > maxTasksPerSess {
		return in, domainerr.Invalid("max_concurrent_tasks", fmt.Sprintf("must be between 1 and %d", maxTasksPerSess))
	}
	if len(req.GetTimeWindows()) > maxWindows {
		return in, domainerr.Invalid("time_windows", fmt.Sprintf("at most %d windows", maxWindows))
	}
	for i, pw := range req.GetTimeWindows() {
		w, err := window.FromProto(pw)
		if err != nil {
			return in, domainerr.Invalid(fmt.Sprintf("time_windows[%d]", i), err.Error())
		}
		in.TimeWindows = append(in.TimeWindows, w)
	}
	return in, validateLabels("labels", in.Labels)
}

// validateLabels bounds a label map: a session's labels, or a filter on them.
func validateLabels(field string, labels map[string]string) error {
	if len(labels) > maxLabels {
		return domainerr.Invalid(field, fmt.Sprintf("at most %d labels", maxLabels))
	}
	for k, v := range labels {
		if k == "" || reqfield.TooLong(k, maxLabelKeyLen) {
			return domainerr.Invalid(field, fmt.Sprintf("key %q must be 1–%d characters", k, maxLabelKeyLen))
		}
		if reqfield.TooLong(v, maxLabelValueLen) {
			return domainerr.Invalid(field, fmt.Sprintf("value of %q must be at most %d characters", k, maxLabelValueLen))
		}
	}
	return reqfield.TextMap(field, labels)
}

// validateBeat checks what a heartbeat reports.
func validateBeat(req *coordinatorv1.HeartbeatRequest) error {
	if n := req.GetCurrentTaskCount(); n < 0 || n > maxTasksPerSess {
		return domainerr.Invalid("current_task_count", fmt.Sprintf("must be between 0 and %d", maxTasksPerSess))
	}
	if reqfield.TooLong(req.GetActivity(), maxActivityLen) {
		return domainerr.Invalid("activity", fmt.Sprintf("must be at most %d characters", maxActivityLen))
	}
	return reqfield.Text("activity", req.GetActivity())
}

func validateLockKey(key string) error {
	if reason := app.ValidLockKey(key); reason != "" {
		return domainerr.Invalid("key", reason)
	}
	return nil
}

func validateHostPort(field, addr string, required bool) error {
	if addr == "" {
		if required {
			return domainerr.Invalid(field, "must not be empty")
		}
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return domainerr.Invalid(field, fmt.Sprintf("%q is not host:port", addr))
	}
	return nil
}
