package auth

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/metadata"
)

// BenchmarkBearer reads the credential of a call as it arrives from the
// REST gateway: authorization, x-forwarded-* and gRPC's own user-agent and
// :authority.
func BenchmarkBearer(b *testing.B) {
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(
		"authorization", "Bearer "+strings.Repeat("t", 400),
		":authority", "127.0.0.1:40000", "content-type", "application/grpc",
		"user-agent", "grpc-go/1.85.0", "x-forwarded-host", "127.0.0.1:41000", "x-forwarded-for", "127.0.0.1"))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := bearer(ctx); !ok {
			b.Fatal("no bearer")
		}
	}
}
