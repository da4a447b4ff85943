package alerts

// GroupUpdate returns the idempotent update of one alert's group in {prefix}-alert-groups:
// the document id, a painless script with its params, and the upsert document used when
// the group does not exist yet. Applying the updates of the same alerts twice, in any
// order, gives the same document. id is "" when the alert belongs to no group.
func GroupUpdate(a *Alert) (id string, script string, params map[string]any, upsert map[string]any) {
	return "", "", nil, nil
}
