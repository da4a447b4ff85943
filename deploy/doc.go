// Package deploy holds the deployment files (deploy/kubernetes) and the test that checks them
// the way the kubelet and mimecrawl will: it renders the kustomization, decodes every object
// strictly into the Kubernetes API types, and checks that each pod runs as the image's numeric
// non-root user, that every file the embedded configuration names is mounted (secrets as files
// only), that every path the program writes is on a writable volume under a read-only root, and
// that the embedded configuration passes mimecrawl's own validation.
//
// The package has no code of its own; it exists so that `go test ./...` runs that test.
package deploy
