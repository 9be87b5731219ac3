package main

import "github.com/gaia-platform/gaia/internal/openapigen"

// policy says who may call each RPC. Today only cluster membership changes
// need a bearer credential (the admin token); agent sessions authenticate with
// their session token in the request.
func policy(fullMethod string) (openapigen.Security, error) {
	switch fullMethod {
	case "/gaia.coordinator.v1.ClusterService/AddVoter",
		"/gaia.coordinator.v1.ClusterService/RemoveServer",
		"/gaia.coordinator.v1.ClusterService/TransferLeadership":
		return openapigen.Security{Roles: []string{"admin"}}, nil
	}
	return openapigen.Security{Public: true}, nil
}
