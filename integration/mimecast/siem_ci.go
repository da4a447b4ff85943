package mimecast

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Cloud Integrated SIEM: the same batch and stream machinery as Cloud Gateway's
// (/siem/v1/batch/events/ci and /siem/v1/events/ci; value[], @nextPage, isCaughtUp; batch
// files of gzip or plain NDJSON fetched without the bearer), with the event types entities,
// mailflow and urlclick (Mimecast's CI SIEM tutorial as cited by Elastic's
// cloud_integrated_logs data stream, whose CEL program reads the batch endpoint one type at
// a time with dateRangeStartsAt/EndsAt as dates, and whose samples hold entities and
// mailflow records with epoch-millisecond timestamps). SIEMBatch and SIEMEvents take the
// product in their query; the zero value keeps Cloud Gateway, so existing callers are
// unchanged. Both products share the batch and stream quota groups (pacer.go): the
// published budgets are for cg, and sharing them is the cautious reading (inferred).
//
// An account without the product gets errors (elastic/integrations #13888: "the product is
// not enabled"); what status they carry is not documented. A 403 is what every other
// unlicensed source answers; for CI a 400, 403 or 404 whose code or message speaks of a
// licence, a product or something not enabled is taken as the same: licence turns it into
// a 403 *Error naming the permission (so IsForbidden isolates the source, as for any
// unlicensed source) that also matches ErrNotLicensed.

// SIEMProduct selects the SIEM product of a batch or stream query.
type SIEMProduct string

// The SIEM products.
const (
	ProductCG SIEMProduct = "cg" // Cloud Gateway (the default)
	ProductCI SIEMProduct = "ci" // Cloud Integrated
)

// CI event types (batch: one per call).
var SIEMTypesCI = []string{"entities", "mailflow", "urlclick"}

// Paths of the CI SIEM endpoints, with the role permission they need (inferred from the
// Cloud Gateway SIEM's naming: not in the scraped 2.0 reference).
var (
	pathSIEMBatchCI  = needs("/siem/v1/batch/events/ci", ciPermission)
	pathSIEMEventsCI = needs("/siem/v1/events/ci", ciPermission)
)

const ciPermission = "Security Events and Data Retrieval | Threat and Security Events (SIEM) for Cloud Integrated | Read"

// ErrNotLicensed marks a Cloud Integrated call refused because the account does not have
// the product. The error also satisfies IsForbidden.
var ErrNotLicensed = errors.New("product not licensed")

func (p SIEMProduct) batchPath() string {
	if p == ProductCI {
		return pathSIEMBatchCI
	}
	return pathSIEMBatch
}

func (p SIEMProduct) streamPath() string {
	if p == ProductCI {
		return pathSIEMEventsCI
	}
	return pathSIEMEvents
}

// licence turns a CI "not licensed" answer of a call to path into a forbidden error (see
// above); any other error, and every cg error, is returned unchanged.
func (p SIEMProduct) licence(err error, path string) error {
	if p != ProductCI {
		return err
	}
	var e *Error
	if !errors.As(err, &e) || e.download || e.token {
		return err
	}
	switch e.Status {
	case http.StatusForbidden:
		return fmt.Errorf("%w: %w", ErrNotLicensed, err)
	case http.StatusBadRequest, http.StatusNotFound:
		text := strings.ToLower(e.Code + " " + e.Message)
		if !strings.Contains(text, "licen") && !strings.Contains(text, "not enabled") && !strings.Contains(text, "product") {
			return err
		}
		f := *e
		f.Message = fmt.Sprintf("%s (answered %d; taken as the product not being licensed)", e.Message, e.Status)
		f.Status = http.StatusForbidden
		f.Retryable = false
		f.Permission = permissions[path]
		return fmt.Errorf("%w: %w", ErrNotLicensed, &f)
	}
	return err
}
