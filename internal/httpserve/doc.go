// Package httpserve owns how a node's HTTP listeners (the S3 gateway, the
// admin API) are served, so that connections always end:
//
//   - a cap on open connections per listener: at the cap, new connections
//     are not accepted (they wait in the kernel's queue and hold no file
//     descriptor) until one closes; reaching it is logged (rate-limited)
//     and counted;
//   - a few reserved connections beyond the cap that serve only named
//     paths (the admin listener keeps /healthz and /readyz answering);
//   - timeouts for request headers and idle keep-alive connections;
//   - a progress deadline on bodies: each read of a request body and each
//     write of a response must move within BodyTimeout, extended on every
//     step, so a large transfer that keeps moving is never cut and a
//     stalled one always is.
//
// Metrics are labelled by listener name, never by client.
package httpserve
