package testnet

import (
	"net"
	"strconv"
	"testing"
)

func TestFreeAddrIsBelowTheEphemeralRangeAndFree(t *testing.T) {
	low := ephemeralLow()
	seen := map[string]bool{}
	for range 20 {
		addr := FreeAddr(t)
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" {
			t.Fatalf("address %q: not a loopback address (%v)", addr, err)
		}
		n, _ := strconv.Atoi(port)
		if low-lowestPort >= 1000 && (n < lowestPort || n >= low) {
			t.Fatalf("port %d is outside [%d, %d)", n, lowestPort, low)
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("cannot listen on the free address %s: %v", addr, err)
		}
		_ = l.Close()
		seen[addr] = true
	}
	if len(seen) < 2 {
		t.Fatal("the same port every time")
	}
	if p := FreePort(t); p <= 0 {
		t.Fatalf("FreePort: %d", p)
	}
}
