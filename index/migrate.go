package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Migration is the move of one kind's documents to the versioned index of this release.
type Migration struct {
	Alias string   // the name users query, e.g. mimecast-messages
	From  []string // the indices holding the documents today
	To    string   // the versioned index they move to
	// Concrete: From is an index named Alias (a release before aliases); the swap deletes it,
	// since an alias cannot share its name. Otherwise the old indices are kept, without the
	// alias, until the operator deletes them.
	Concrete bool
	Docs     int64 // documents in From when Plan looked
}

func (m Migration) String() string {
	s := fmt.Sprintf("%d documents of %s move to %s", m.Docs, strings.Join(m.From, ","), m.To)
	if m.Concrete {
		return s + ", then " + m.Alias + " becomes an alias of it (the old index is deleted once the copy is verified)"
	}
	return s + ", then the alias " + m.Alias + " moves to it (the old index is kept)"
}

// Plan returns the migrations Setup would run for the archive's kinds, changing nothing. An
// object of a name Setup manages that is not mimecrawl's is a *ForeignError, as in Setup.
func (c *Cluster) Plan(ctx context.Context) ([]Migration, error) {
	var out []Migration
	for _, k := range []Kind{Messages, Attachments} {
		if _, err := c.claim(ctx, k, false); err != nil {
			return nil, err
		}
	}
	for _, k := range []Kind{Messages, Attachments} {
		l, err := c.resolve(ctx, k)
		if err != nil {
			return nil, err
		}
		target := c.VersionedIndex(k)
		if len(l.indices) == 0 || (l.has(target) && !l.concrete) {
			continue
		}
		m := c.migration(k, l)
		if m.Docs, err = c.countIn(ctx, m.From); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func (c *Cluster) migration(k Kind, l layout) Migration {
	return Migration{Alias: c.IndexName(k), From: l.indices, To: c.VersionedIndex(k), Concrete: l.concrete}
}

func (c *Cluster) countIn(ctx context.Context, indices []string) (int64, error) {
	var res struct {
		Count int64 `json:"count"`
	}
	name := strings.Join(indices, ",")
	if err := c.do(ctx, http.MethodPost, "/"+name+"/_count", nil, nil, &res); err != nil {
		return 0, fmt.Errorf("count documents in %s: %w", name, err)
	}
	return res.Count, nil
}

// migratePage bounds the documents held at once while copying: message bodies can be large.
const migratePage = 200

// migrate moves the documents of kind k from the indices l names to the versioned index, and
// then points the alias at it.
//
// It is safe to run twice at once and to run again after a crash, which is how two processes
// starting together are kept apart: documents are copied with op_type create under their own
// ids, so a copy never overwrites a document already in the new index (one a crawl wrote
// after another process finished the migration), and the swap is one _aliases request, which
// fails harmlessly for the second process once the first has made it. Nothing is removed
// before every document of the old index is confirmed in the new one.
func (c *Cluster) migrate(ctx context.Context, k Kind, l layout) error {
	m := c.migration(k, l)
	log := c.log.With().Str("alias", m.Alias).Strs("from", m.From).Str("to", m.To).Logger()
	log.Info().Msg("migrating index to the schema of this release")

	if err := c.checkOwned(ctx, k, m.From...); err != nil {
		return err
	}
	err := c.do(ctx, http.MethodPut, "/"+m.To, nil, obj{"mappings": obj{"_meta": ownMeta(k)}}, nil)
	var se *StatusError
	if err != nil && (!errors.As(err, &se) || se.Type != "resource_already_exists_exception") {
		return fmt.Errorf("migrate %s: create %s: %w", m.Alias, m.To, err)
	}
	copied, err := c.copyDocs(ctx, k, m)
	if err != nil {
		return fmt.Errorf("migrate %s to %s (the old index is unchanged): %w", m.Alias, m.To, err)
	}
	if err := c.do(ctx, http.MethodPost, "/"+m.To+"/_refresh", nil, nil, nil); err != nil {
		return fmt.Errorf("migrate %s: refresh %s: %w", m.Alias, m.To, err)
	}
	have, err := c.countIn(ctx, []string{m.To})
	if err != nil {
		return fmt.Errorf("migrate %s: %w", m.Alias, err)
	}
	if have < copied {
		return fmt.Errorf("migrate %s: %s holds %d documents after copying %d; the old index is unchanged", m.Alias, m.To, have, copied)
	}
	// Something still writing to the old index (an older release left running) would lose
	// what it wrote after the copy began.
	if old, err := c.countIn(ctx, m.From); err != nil {
		return fmt.Errorf("migrate %s: %w", m.Alias, err)
	} else if old != copied {
		return fmt.Errorf("migrate %s: %s holds %d documents, %d were copied: stop every older mimecrawl writing to it and run again", m.Alias, strings.Join(m.From, ","), old, copied)
	}

	var actions []obj
	for _, from := range m.From {
		if m.Concrete {
			actions = append(actions, obj{"remove_index": obj{"index": from}})
		} else {
			actions = append(actions, obj{"remove": obj{"index": from, "alias": m.Alias}})
		}
	}
	actions = append(actions, obj{"add": obj{"index": m.To, "alias": m.Alias, "is_write_index": true}})
	if err := c.do(ctx, http.MethodPost, "/_aliases", nil, obj{"actions": actions}, nil); err != nil {
		// Another process may have swapped first: then the alias is where it should be.
		if now, rerr := c.resolve(ctx, k); rerr == nil && now.has(m.To) && !now.concrete {
			log.Info().Msg("another process completed the migration")
			return c.updateMapping(ctx, m.To)
		}
		return fmt.Errorf("migrate %s: point the alias at %s: %w", m.Alias, m.To, err)
	}
	log.Info().Int64("documents", copied).Msg("migrated index")
	return nil
}

// copyDocs copies every document of m.From into m.To, converted by the kind's spec, and
// returns how many it confirmed there (created now, or already present).
func (c *Cluster) copyDocs(ctx context.Context, k Kind, m Migration) (int64, error) {
	convert := k.spec.Convert
	from := strings.Join(m.From, ",")
	var copied int64
	err := c.walkPIT(ctx, from, nil, true, migratePage, func(hits []pitHit) error {
		srcs := make([]map[string]any, len(hits))
		for i, h := range hits {
			srcs[i] = h.Source
			if convert != nil && srcs[i] != nil {
				srcs[i] = convert(srcs[i])
			}
		}
		if k == Attachments {
			if err := c.fromMessages(ctx, srcs); err != nil {
				return err
			}
		}
		ops := make([]bulkOp, len(hits))
		for i, h := range hits {
			body, err := json.Marshal(srcs[i])
			if err != nil {
				return fmt.Errorf("encode %s: %w", h.ID, err)
			}
			ops[i] = bulkOp{action: "create", index: m.To, id: h.ID, body: body}
		}
		n, err := c.bulkCreate(ctx, ops)
		copied += n
		if err != nil {
			return fmt.Errorf("write %d documents to %s: %w", len(hits), m.To, err)
		}
		return nil
	})
	return copied, err
}

// bulkCreate sends create actions and counts the documents that are now in the index: created,
// or there already (409). Any other item failure is an error.
func (c *Cluster) bulkCreate(ctx context.Context, ops []bulkOp) (int64, error) {
	return c.bulkCount(ctx, ops, "copy", func(o itemOutcome) bool { return o == itemDone || o == itemExisted })
}

// messageEmailFields are the email fields an attachment document shares with its message.
var messageEmailFields = []string{"message_id", "from", "sender", "to", "cc", "reply_to", "origination_timestamp"}

// fromMessages completes converted attachment documents with the email fields of their
// messages, which the release before ECS did not put on attachments: the messages index is
// migrated first, so they are read from it, one _mget per page. A message not found leaves
// its attachments as they are.
func (c *Cluster) fromMessages(ctx context.Context, docs []map[string]any) error {
	ids := map[string]bool{}
	for _, d := range docs {
		if id := str(nested(d, "mimecast", "message_doc_id")); id != "" {
			ids[id] = true
		}
	}
	if len(ids) == 0 {
		return nil
	}
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	name := c.IndexName(Messages)
	stored, err := c.mget(ctx, name, list, url.Values{"_source_includes": {"email"}}, false)
	if err != nil {
		return fmt.Errorf("read the messages of %d attachments from %s: %w", len(docs), name, err)
	}
	emails := map[string]map[string]any{}
	for id, d := range stored {
		var msg map[string]any
		if err := json.Unmarshal(d.Source, &msg); err != nil {
			return fmt.Errorf("read the message %s in %s: %w", id, name, err)
		}
		if e, ok := msg["email"].(map[string]any); ok {
			emails[id] = e
		}
	}
	for _, d := range docs {
		msg := emails[str(nested(d, "mimecast", "message_doc_id"))]
		email, ok := d["email"].(map[string]any)
		if msg == nil || !ok {
			continue
		}
		for _, f := range messageEmailFields {
			if v, ok := msg[f]; ok {
				if _, has := email[f]; !has {
					email[f] = v
				}
			}
		}
		// The old attachment kept the detail's subject, blank for a subject-less message;
		// the message has the configured default.
		if s, _ := email["subject"].(string); strings.TrimSpace(s) == "" && msg["subject"] != nil {
			email["subject"] = msg["subject"]
		}
	}
	return nil
}

// nested reads d[k1][k2]...
func nested(d map[string]any, keys ...string) any {
	var v any = d
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}
