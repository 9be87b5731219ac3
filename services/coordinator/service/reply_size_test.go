package service_test

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	coordinatorv1 "github.com/gaia-platform/gaia/proto/gaia/coordinator/v1"
	"github.com/gaia-platform/gaia/services/coordinator/coordtest"
)

// These tests scale the replies down: a client that takes at most 256 KiB
// (gRPC's default is 4 MiB) and a server budget of 128 KiB (3 MiB by
// default), so that a few hundred items stand for the tens of thousands
// that broke.
const (
	smallClientLimit = 256 << 10
	smallReplyBudget = 128 << 10
)

var smallClient = grpc.MaxCallRecvMsgSize(smallClientLimit)

// Deregistering a session that held 40,000 locks committed, but its reply,
// listing every released key, was more than the client would take. The reply
// now lists the first keys within the budget and counts them all; ListLocks
// pages within the budget too.
func TestDeregisterSessionWithManyLocksAnswersWithinTheReplyBudget(t *testing.T) {
	c := coordtest.Start(t, 1, coordtest.Options{Quiet: true, MaxLocksPerSession: 2000, MaxReplyBytes: smallReplyBudget})
	cl := c.Client()
	s, tok := register(t, cl, "locker")
	const n = 1200
	key := func(i int) string { return fmt.Sprintf("repo/%s/%05d", strings.Repeat("k", 290), i) }
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if _, err := acquire(ctxT(t, 30*time.Second), cl, key(i), s.GetSessionId(), tok, time.Hour, 0); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("acquire: %v", err)
	}

	var listed []string
	tok2 := ""
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatalf("still paging after %d pages", pages)
		}
		resp, err := cl.Locks().ListLocks(ctxT(t, 10*time.Second), &coordinatorv1.ListLocksRequest{PageSize: 1000, PageToken: tok2}, smallClient)
		if err != nil {
			t.Fatalf("list locks page %d: %v", pages, err)
		}
		if sz := proto.Size(resp); sz > smallReplyBudget {
			t.Errorf("list locks page %d is %d bytes, over the %d budget", pages, sz, smallReplyBudget)
		}
		for _, l := range resp.GetLocks() {
			listed = append(listed, l.GetKey())
		}
		if tok2 = resp.GetNextPageToken(); tok2 == "" {
			break
		}
	}
	if len(listed) != n || !slices.IsSorted(listed) {
		t.Errorf("the pages list %d locks (sorted %v), want %d in key order", len(listed), slices.IsSorted(listed), n)
	}

	events := watchEvents(t, cl, 0)
	resp, err := cl.Sessions().DeregisterSession(ctxT(t, 10*time.Second), &coordinatorv1.DeregisterSessionRequest{SessionId: s.GetSessionId(), SessionToken: tok}, smallClient)
	if err != nil {
		t.Fatalf("deregister a session holding %d locks: %v", n, err)
	}
	if sz := proto.Size(resp); sz > smallReplyBudget {
		t.Errorf("deregister reply is %d bytes, over the %d budget", sz, smallReplyBudget)
	}
	keys := resp.GetReleasedLockKeys()
	if resp.GetReleasedLockCount() != n || len(keys) == 0 || len(keys) >= n {
		t.Fatalf("released_lock_count %d with %d keys; want %d and a part of the keys", resp.GetReleasedLockCount(), len(keys), n)
	}
	for i, k := range keys {
		if k != key(i) {
			t.Fatalf("released_lock_keys[%d] = %q, want the keys in order from %q", i, k, key(0))
		}
	}
	// The watch's event of it lists at most 1,000 keys and counts them all.
	timeout := time.After(10 * time.Second)
	for {
		select {
		case e := <-events:
			if e.GetType() != coordinatorv1.SessionEventType_SESSION_EVENT_TYPE_DEREGISTERED {
				continue
			}
			if e.GetReleasedLockCount() != n || len(e.GetReleasedLockKeys()) != 1000 || e.GetReleasedLockKeys()[0] != key(0) {
				t.Errorf("deregistered event: released_lock_count %d with %d keys from %q; want %d with the first 1000", e.GetReleasedLockCount(), len(e.GetReleasedLockKeys()), e.GetReleasedLockKeys()[0], n)
			}
			return
		case <-timeout:
			t.Fatal("no deregistered event within 10 s")
		}
	}
}

// `gaia session list` failed once sessions carried large labels: a page of
// them passed what the client takes. A page now ends at the reply's budget
// with a next_page_token.
func TestListSessionsWithLargeLabelsEndsThePageAtTheReplyBudget(t *testing.T) {
	c := coordtest.Start(t, 1, coordtest.Options{Quiet: true, MaxReplyBytes: smallReplyBudget})
	cl := c.Client()
	const n = 100
	labels := map[string]string{}
	for i := range 16 {
		labels[fmt.Sprintf("label-%02d", i)] = strings.Repeat("v", 240)
	}
	for i := range n {
		_, err := cl.Sessions().RegisterSession(ctxT(t, 10*time.Second), &coordinatorv1.RegisterSessionRequest{
			Name: fmt.Sprintf("labelled-%03d", i), Tier: coordinatorv1.SessionTier_SESSION_TIER_WORKER, Provider: coordinatorv1.Provider_PROVIDER_CLAUDE,
			MaxConcurrentTasks: 1, Labels: labels,
		})
		if err != nil {
			t.Fatalf("register %d: %v", i, err)
		}
	}
	seen := map[string]bool{}
	tok := ""
	for pages := 0; ; pages++ {
		if pages > n {
			t.Fatalf("still paging after %d pages", pages)
		}
		resp, err := cl.Sessions().ListSessions(ctxT(t, 10*time.Second), &coordinatorv1.ListSessionsRequest{PageSize: 1000, PageToken: tok}, smallClient)
		if err != nil {
			t.Fatalf("list sessions page %d: %v", pages, err)
		}
		if sz := proto.Size(resp); sz > smallReplyBudget {
			t.Errorf("page %d is %d bytes, over the %d budget", pages, sz, smallReplyBudget)
		}
		for _, s := range resp.GetSessions() {
			if seen[s.GetSessionId()] {
				t.Errorf("session %s listed twice", s.GetName())
			}
			seen[s.GetSessionId()] = true
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	if len(seen) != n {
		t.Errorf("the pages hold %d sessions, want %d", len(seen), n)
	}
}
