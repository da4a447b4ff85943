package mimecast

// Permissions of the archive access audit, release log, threat-intel and Cloud Integrated
// SIEM endpoints, added to the permission table (errors.go) so that a 403 names what the
// API application lacks. None of these names is in the scraped 2.0 reference: each follows
// the console's "area | function | Read" naming of its neighbours (inferred), so a 403's
// message says "needs" a name an administrator can find, not a verified string.
func init() {
	for path, perm := range map[string]string{
		pathArchiveSearchLogs: "Archive | Search Logs | Read",
		pathSearchLogs:        "Archive | Search Logs | Read",
		pathViewLogs:          "Archive | View Logs | Read",
		pathHeldReleaseLogs:   "Gateway | Held Messages | Read",
		pathThreatIntelFeed:   "Services | Threat Intelligence | Read",
		pathSIEMBatchCI:       "Security Events and Data Retrieval | Threat and Security Events (SIEM) for Cloud Integrated | Read",
		pathSIEMEventsCI:      "Security Events and Data Retrieval | Threat and Security Events (SIEM) for Cloud Integrated | Read",
	} {
		permissions[path] = perm
	}
}

// PermissionOf returns the permission the permission table names for an endpoint path
// ("" if none), so that a caller (check) can say what a source needs before calling it.
func PermissionOf(path string) string { return permissions[path] }
