package grpcserver

import "testing"

func TestReplyBudgetStopsBeforeTheItemThatWouldPassIt(t *testing.T) {
	b := NewReplyBudget(replyReserve + 100)
	if !b.AddBytes(150) {
		t.Fatal("the first item, larger than the budget, was refused; a page must hold at least one")
	}
	if b.AddBytes(1) {
		t.Fatal("an item past a spent budget fitted")
	}
	b = NewReplyBudget(replyReserve + 100)
	b.Reserve(40)
	if !b.AddBytes(60) || b.AddBytes(1) {
		t.Fatalf("after reserving 40 of 100, 60 more should fit and nothing after; left %d", b.Left())
	}
	if got := ElementSize(200); got != 1+2+200 {
		t.Errorf("ElementSize(200) = %d, want tag 1 + length 2 + 200", got)
	}
}
