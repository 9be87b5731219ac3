// Package testnet gives tests loopback addresses to start servers on.
package testnet

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
)

// lowestPort is the bottom of the range FreeAddr picks from.
const lowestPort = 10000

// FreeAddr returns a loopback address whose port is free now, for a server
// the test starts a moment later, when its address must be known first (a
// cluster's nodes name each other before any of them starts).
//
// The port is picked below the kernel's ephemeral range: a port from that
// range (what listening on port 0 gives) can be taken, in the moment
// between the check and the server's bind, as the local port of any outgoing
// connection, and tests of a cluster open thousands of those ("bind: address
// already in use" in CI). Outside it only another test picking the same port
// at random can collide.
func FreeAddr(t testing.TB) string {
	t.Helper()
	top := ephemeralLow()
	if top-lowestPort >= 1000 {
		for range 100 {
			addr := fmt.Sprintf("127.0.0.1:%d", lowestPort+rand.IntN(top-lowestPort))
			if l, err := net.Listen("tcp", addr); err == nil {
				_ = l.Close()
				return addr
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free loopback port: %v", err)
	}
	defer l.Close()
	return l.Addr().String()
}

// FreePort is FreeAddr's port.
func FreePort(t testing.TB) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(FreeAddr(t))
	n, err := strconv.Atoi(port)
	if err != nil {
		t.Fatalf("port of a free address: %v", err)
	}
	return n
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return 32768
	}
	low, err := strconv.Atoi(fields[0])
	if err != nil {
		return 32768
	}
	return low
}
