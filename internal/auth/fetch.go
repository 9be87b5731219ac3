package auth

import (
	"context"

	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/gaia-platform/gaia/internal/grpcclient"
	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
)

// RevocationsFrom fetches the revocation list from the coordinator over
// conn, which must present a service (or admin) credential
// (grpcclient.WithBearer, or coordinator client.Options.Token).
func RevocationsFrom(conn grpc.ClientConnInterface) func(context.Context) ([]Revoked, error) {
	client := coordinatorv1.NewAuthServiceClient(conn)
	return func(ctx context.Context) ([]Revoked, error) {
		resp, err := client.ListRevocations(ctx, &coordinatorv1.ListRevocationsRequest{})
		if err != nil {
			return nil, err
		}
		out := make([]Revoked, len(resp.GetRevocations()))
		for i, r := range resp.GetRevocations() {
			out[i] = Revoked{ID: r.GetCredentialId(), ExpiresAt: r.GetExpiresAt().AsTime()}
		}
		return out, nil
	}
}

// PollCoordinator is Run with the revocation list fetched from the
// coordinator at addr, presenting this process's own credential; opts are
// the service's own dial options (its TLS).
func (r *Runtime) PollCoordinator(ctx context.Context, addr string, opts ...grpc.DialOption) {
	if r.verifier == nil {
		<-ctx.Done()
		return
	}
	conn, err := grpcclient.Dial(addr, append(opts, grpcclient.WithBearer(r.token))...)
	if err != nil {
		r.log.Error("cannot dial the coordinator for revocations; revoked credentials stay valid here", zap.String("coordinator", addr), zap.Error(err))
		<-ctx.Done()
		return
	}
	defer conn.Close()
	r.Run(ctx, RevocationsFrom(conn))
}
