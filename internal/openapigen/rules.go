package openapigen

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// httpRule is one binding of google.api.HttpRule as written in proto/gateway.yaml.
type httpRule struct {
	Selector           string     `json:"selector"`
	Get                string     `json:"get"`
	Put                string     `json:"put"`
	Post               string     `json:"post"`
	Delete             string     `json:"delete"`
	Patch              string     `json:"patch"`
	Body               string     `json:"body"`
	ResponseBody       string     `json:"response_body"`
	AdditionalBindings []httpRule `json:"additional_bindings"`
}

// verbPath returns the rule's HTTP method (lower case, as OpenAPI keys it) and
// path template.
func (r httpRule) verbPath() (string, string, error) {
	var verb, path string
	for _, c := range []struct{ verb, path string }{
		{"get", r.Get}, {"put", r.Put}, {"post", r.Post}, {"delete", r.Delete}, {"patch", r.Patch},
	} {
		if c.path == "" {
			continue
		}
		if verb != "" {
			return "", "", fmt.Errorf("rule %s has more than one method", r.Selector)
		}
		verb, path = c.verb, c.path
	}
	if verb == "" {
		return "", "", fmt.Errorf("rule %s has no method", r.Selector)
	}
	return verb, path, nil
}

type serviceConfig struct {
	Type          string `json:"type"`
	ConfigVersion int    `json:"config_version"`
	HTTP          struct {
		Rules []httpRule `json:"rules"`
	} `json:"http"`
}

// readRules reads the grpc_api_configuration file that the gateway's generated
// handlers were built from, keyed by the RPC's full name.
func readRules(path string) (map[string]httpRule, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var sc serviceConfig
	if err := yaml.UnmarshalStrict(raw, &sc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	rules := make(map[string]httpRule, len(sc.HTTP.Rules))
	for _, r := range sc.HTTP.Rules {
		if _, dup := rules[r.Selector]; dup {
			return nil, fmt.Errorf("%s: two rules for %s", path, r.Selector)
		}
		rules[r.Selector] = r
	}
	return rules, nil
}
