// Package indextest helps tests that need a real Elasticsearch: it finds the test cluster,
// makes unique index prefixes and removes what a test created, and it puts a fault-injecting
// reverse proxy in front of the cluster so that tests can see bulk items rejected with 429 or
// with a mapping error, and the whole cluster answering 503 or refusing connections.
//
// The proxy changes nothing it was not told to: every other request and every other bulk item
// reaches the real cluster, and real answers are passed back unchanged apart from the spliced
// item results.
package indextest
