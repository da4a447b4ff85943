// Package deploy holds the deployment files (deploy/kubernetes) and the test that checks them
// the way the kubelet and mimecrawl will: it renders the kustomization, decodes every object
// strictly into the Kubernetes API types, and checks that each pod runs as the image's numeric
// non-root user, that every file the embedded configuration names is mounted (secrets as files
// only), that every path the program writes is on a writable volume under a read-only root, and
// that the embedded configuration passes mimecrawl's own validation.
//
// The package has no code of its own. It is a module of its own (go.mod beside this file) so
// that the Kubernetes and kustomize modules the test needs stay out of the product's module
// graph; `make test` runs it with the rest.
package deploy
