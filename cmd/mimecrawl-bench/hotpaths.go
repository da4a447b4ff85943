package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// HotRow is one Go benchmark of a hot path: the median of its repeated runs per unit.
type HotRow struct {
	Package string             `json:"package"`
	Name    string             `json:"name"`
	Runs    int                `json:"runs"`
	Metrics map[string]float64 `json:"metrics"` // unit -> median value (ns/op, B/op, allocs/op, MB/s, ...)
}

var procSuffix = regexp.MustCompile(`-\d+$`)

// parseHotpaths reads `go test -bench` output (the format benchstat reads) and returns the
// median of every metric of every benchmark.
func parseHotpaths(path string) ([]HotRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read hot-path benchmarks: %w", err)
	}
	defer f.Close()
	type key struct{ pkg, name string }
	values := map[key]map[string][]float64{}
	runs := map[key]int{}
	var order []key
	pkg := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(strings.TrimSpace(rest), "github.com/mimecrawl/mimecrawl/")
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(fields[1]); err != nil {
			continue
		}
		k := key{pkg, procSuffix.ReplaceAllString(strings.TrimPrefix(fields[0], "Benchmark"), "")}
		if values[k] == nil {
			values[k] = map[string][]float64{}
			order = append(order, k)
		}
		runs[k]++
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				continue
			}
			values[k][fields[i+1]] = append(values[k][fields[i+1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read hot-path benchmarks %s: %w", path, err)
	}
	rows := make([]HotRow, 0, len(order))
	for _, k := range order {
		r := HotRow{Package: k.pkg, Name: k.name, Runs: runs[k], Metrics: map[string]float64{}}
		for unit, vs := range values[k] {
			r.Metrics[unit] = median(vs)
		}
		rows = append(rows, r)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].Package < rows[j].Package })
	return rows, nil
}
