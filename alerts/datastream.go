package alerts

import (
	"context"

	"github.com/mimecrawl/mimecrawl/index"
)

// Alerts go to the data stream logs-mimecrawl.alerts-{namespace}, where Elastic Security's
// default index patterns (logs-*) and its prebuilt "External Alerts" rule (event.kind: alert)
// look without any configuration. The dataset is ours, not logs-mimecast.*, which belongs to
// Elastic's Mimecast integration, whose templates and pipelines may be installed on the same
// cluster. Alert groups are updated in place and stay a regular index.

// Dataset is data_stream.dataset and event.dataset of every alert.
const Dataset = "mimecrawl.alerts"

// IDSet answers, for one pass, which alert ids the data stream already holds, and removes
// alerts so that a corrected one can be written again. Implemented by *index.StreamIDs.
type IDSet interface {
	// Has returns which of ids are in the stream, in any backing index, as of when the set
	// was opened or later. An error means "unknown", never "absent".
	Has(ctx context.Context, ids []string) (map[string]bool, error)
	// Remove deletes every copy of ids, acknowledged before it returns.
	Remove(ctx context.Context, ids []string) (int64, error)
}

// Stream gives the data streams the sources write to: the alerts' and each event source's.
type Stream interface {
	// Namespace is data_stream.namespace of every document.
	Namespace() string
	// OpenIDs starts a pass's view of the ids the data stream of kind k holds: everything
	// acknowledged before the call is in it.
	OpenIDs(ctx context.Context, k index.Kind) (IDSet, error)
}

// NewStream returns the Stream of the sources' data streams on a cluster.
func NewStream(c *index.Cluster) Stream { return clusterStream{c} }

type clusterStream struct{ c *index.Cluster }

func (s clusterStream) Namespace() string { return s.c.Namespace() }

func (s clusterStream) OpenIDs(ctx context.Context, k index.Kind) (IDSet, error) {
	return s.c.StreamIDs(ctx, k)
}

var _ IDSet = (*index.StreamIDs)(nil)

// withStream adds the data stream fields to an alert document: the stream's name is made of
// them, and Elastic's views filter on them (data_stream.namespace separates installations).
func withStream(body map[string]any, namespace string) map[string]any {
	return withDataset(body, Dataset, namespace)
}

// withDataset adds the fields of the data stream logs-{dataset}-{namespace} to a document.
func withDataset(body map[string]any, dataset, namespace string) map[string]any {
	body["data_stream"] = map[string]any{"type": "logs", "dataset": dataset, "namespace": namespace}
	return body
}
