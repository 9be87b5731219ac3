package grpcclient

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// WithBearer sends "authorization: Bearer <token>" on every call of the
// connection, unary and streaming, that does not carry an authorization of
// its own. An empty token sends nothing. Services use it with their service
// credential (AUTH_TOKEN_FILE), the CLI with the user's.
func WithBearer(token string) grpc.DialOption {
	if token == "" {
		return grpc.EmptyDialOption{}
	}
	return grpc.WithPerRPCCredentials(bearerCredentials(token))
}

type bearerCredentials string

func (b bearerCredentials) GetRequestMetadata(ctx context.Context, _ ...string) (map[string]string, error) {
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get("authorization")) > 0 {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false: inside the cluster the credential may
// travel over plain TCP until TLS is configured (docs/SECURITY.md).
func (bearerCredentials) RequireTransportSecurity() bool { return false }
