package job

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// fill sets every field of v, however deep, to a value that is not its zero, each a different
// one: a field that a copy forgets then shows in the comparison. A struct takes no number of
// its own, so a value's numbers do not depend on how its fields are grouped into structs.
func fill(v reflect.Value, n *int) {
	if v.Kind() != reflect.Struct || v.Type() == reflect.TypeOf(time.Time{}) {
		*n++
	}
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n) + 0.5)
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", *n))
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), n)
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, n)
		fill(e, n)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 1, 0, 0, *n, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n)
			}
		}
	default:
		panic("fill: no value for " + v.Type().String())
	}
}

// The run summary is recorded in the state file under the names and with the values it is
// logged with, every field of it (the crawler's totals too), and reads back equal: `status`
// shows what the run did.
func TestSummaryRecordIsTheSummary(t *testing.T) {
	var s Summary
	fill(reflect.ValueOf(&s).Elem(), new(int))
	logged, _ := json.Marshal(&s)
	rec := s.Record()
	recorded, _ := json.Marshal(rec)
	if string(recorded) != string(logged) {
		t.Errorf("recorded\n%s\nlogged\n%s", recorded, logged)
	}
	if back := SummaryOf(rec); !reflect.DeepEqual(back, s) {
		t.Errorf("read back\n%+v\nwant\n%+v", back, s)
	}
}

// The logged summaries keep their fields, names and order: testdata holds the JSON of filled
// summaries as a release wrote them before they shared their fields with the state file's
// records (a run summary never carries the record's version "v").
func TestSummaryJSONIsUnchanged(t *testing.T) {
	var run Summary
	fill(reflect.ValueOf(&run).Elem(), new(int))
	run.V = 0
	var pass AlertsSummary
	fill(reflect.ValueOf(&pass).Elem(), new(int))
	for file, s := range map[string]any{"summary.json": &run, "alerts-summary.json": &pass} {
		got, err := json.MarshalIndent(s, "", "\t")
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		if string(got)+"\n" != string(want) {
			t.Errorf("logged summary\n%s\nwant (testdata/%s)\n%s", got, file, want)
		}
	}
}

// The alerts pass summary likewise.
func TestAlertsSummaryRecordIsTheSummary(t *testing.T) {
	var s AlertsSummary
	fill(reflect.ValueOf(&s).Elem(), new(int))
	logged, _ := json.Marshal(&s)
	recorded, _ := json.Marshal(s.Record())
	if string(recorded) != string(logged) {
		t.Errorf("recorded\n%s\nlogged\n%s", recorded, logged)
	}
}
