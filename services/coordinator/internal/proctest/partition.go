package proctest

import (
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

func raftName(i int) string { return fmt.Sprintf("raft-%d.proctest", i) }

// startProxies starts a proxy for every ordered pair of nodes, from on
// 127.0.(10+from).(to) at to's Raft port, and writes each node's hosts file:
// its own name is itself, every peer's name is the proxy to that peer.
// Loopback answers on all of 127.0.0.0/8, and each node binds 127.0.0.1
// only, so the proxies can share its port.
func (c *Cluster) startProxies(dir string, raftAddrs []string) {
	c.proxies = map[int]map[int]*raftProxy{}
	for from := 1; from <= len(c.Nodes); from++ {
		c.proxies[from] = map[int]*raftProxy{}
		var hosts strings.Builder
		for to := 1; to <= len(c.Nodes); to++ {
			if to == from {
				fmt.Fprintf(&hosts, "127.0.0.1 %s\n", raftName(to))
				continue
			}
			_, port, _ := net.SplitHostPort(raftAddrs[to-1])
			ip := fmt.Sprintf("127.0.%d.%d", 10+from, to)
			l, err := net.Listen("tcp", net.JoinHostPort(ip, port))
			if err != nil {
				c.t.Fatalf("raft proxy %d→%d: %v", from, to, err)
			}
			p := &raftProxy{l: l, target: raftAddrs[to-1], conns: map[net.Conn]bool{}}
			go p.serve()
			c.proxies[from][to] = p
			fmt.Fprintf(&hosts, "%s %s\n", ip, raftName(to))
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("node-%d.hosts", from)), []byte(hosts.String()), 0o600); err != nil {
			c.t.Fatal(err)
		}
	}
}

// Isolate cuts every Raft path to and from n: open connections are closed,
// new ones are accepted and then left silent, as behind a network that
// drops packets, until Heal. Its gRPC port stays reachable.
func (c *Cluster) Isolate(n *Node) { c.setPartitioned(n, true) }

// Heal undoes Isolate.
func (c *Cluster) Heal(n *Node) { c.setPartitioned(n, false) }

func (c *Cluster) setPartitioned(n *Node, cut bool) {
	c.t.Helper()
	if c.proxies == nil {
		c.t.Fatal("proctest: Isolate needs Options.Partitions")
	}
	i := 0
	for j, m := range c.Nodes {
		if m == n {
			i = j + 1
		}
	}
	for from, to := range c.proxies {
		for dst, p := range to {
			if from == i || dst == i {
				p.setBlocked(cut)
			}
		}
	}
}

// raftProxy forwards TCP connections to target unless blocked.
type raftProxy struct {
	l      net.Listener
	target string

	mu      sync.Mutex
	blocked bool
	closed  bool
	conns   map[net.Conn]bool // every open connection, both sides
}

func (p *raftProxy) serve() {
	for {
		in, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = in.Close()
			return
		}
		p.conns[in] = true
		blocked := p.blocked
		p.mu.Unlock()
		if blocked {
			continue // held silent until Heal closes it
		}
		go p.forward(in)
	}
}

func (p *raftProxy) forward(in net.Conn) {
	out, err := net.Dial("tcp", p.target)
	if err != nil {
		p.drop(in)
		return
	}
	p.mu.Lock()
	if p.blocked || p.closed {
		p.mu.Unlock()
		_ = out.Close()
		return // in is closed by setBlocked or close
	}
	p.conns[out] = true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) { _, _ = io.Copy(dst, src); done <- struct{}{} }
	go pipe(out, in)
	go pipe(in, out)
	<-done
	p.drop(in)
	p.drop(out)
}

func (p *raftProxy) drop(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

// setBlocked closes every connection: cutting ends the forwarded ones,
// healing ends the silent ones so that their dialers retry at once.
func (p *raftProxy) setBlocked(b bool) {
	p.mu.Lock()
	p.blocked = b
	conns := p.conns
	p.conns = map[net.Conn]bool{}
	p.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

func (p *raftProxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.l.Close()
	p.setBlocked(true)
}
