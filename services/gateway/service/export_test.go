package service

// IsStreamingRoute is isStreamingRoute, for the test that holds it to
// proto/gateway.yaml.
var IsStreamingRoute = isStreamingRoute
