package service_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The API reference page (/docs) in a real browser with no internet: the
// embedded Swagger UI loads the gateway's own /openapi.json and renders every
// operation, with the document's title and the build's version.
func TestAPIReferencePageInBrowser(t *testing.T) {
	bctx := browser(t)
	base := startGateway(t, "127.0.0.1:1", "127.0.0.1:1")
	ctx, cancel := context.WithTimeout(bctx, 60*time.Second)
	defer cancel()
	var operations int
	var title string
	err := chromedp.Run(ctx,
		chromedp.Navigate(base+"/docs"),
		chromedp.WaitVisible(".opblock", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll(".opblock").length`, &operations),
		chromedp.Text(".info .title", &title, chromedp.ByQuery),
	)
	if err != nil {
		var shot []byte
		if chromedp.Run(bctx, chromedp.FullScreenshot(&shot, 80)) == nil {
			_ = os.WriteFile(artifact(t, "api-reference.png"), shot, 0o644)
		}
		t.Fatalf("/docs did not render: %v", err)
	}
	if operations < 54 {
		t.Errorf("/docs shows %d operations, want every REST route", operations)
	}
	if want := "GAIA API"; len(title) < len(want) || title[:len(want)] != want {
		t.Errorf("/docs title = %q, want %q with the version", title, want)
	}
}
