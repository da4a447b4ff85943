package alerts

// Enrichment is what the poller learnt about an alert beyond its record: the recipient
// from the directory, the archived message from the messages index, and the console link.
type Enrichment struct {
	RecipientName, RecipientDomain, RecipientMailbox string
	ArchiveDocID, ArchiveIndex, ArchiveSubject       string
	DetailsURL                                       string
}

// AlertDocument returns the ECS document of a for {prefix}-alerts.
func AlertDocument(a *Alert, e Enrichment) map[string]any {
	return map[string]any{}
}

// AlertsMapping returns the explicit mapping of {prefix}-alerts.
func AlertsMapping() map[string]any {
	return map[string]any{"dynamic": false, "properties": map[string]any{}}
}

// GroupsMapping returns the explicit mapping of {prefix}-alert-groups.
func GroupsMapping() map[string]any {
	return map[string]any{"dynamic": false, "properties": map[string]any{}}
}
