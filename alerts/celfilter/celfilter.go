package celfilter

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/types"
)

// CostLimit bounds the work of one evaluation, in CEL's abstract cost units (roughly one
// per operation and per element a comprehension or string function visits). A filter over
// one alert needs a few hundred; the limit leaves room for comprehensions over recipients
// and files while keeping a pathological expression over a hostile record bounded.
const CostLimit = 100_000

// MaxExpressionBytes bounds the length of one expression, so a pasted blob cannot make
// compilation expensive.
const MaxExpressionBytes = 4096

// AlertFields lists the fields of the alert variable, in documentation order. Package
// alerts fills a map with exactly these keys (docs/alerts.md describes each one).
var alertFields = []string{
	"source", "time", "verdict", "type", "status", "route", "action", "sender",
	"recipients", "subject", "message_id", "files", "url", "source_ip", "rule", "details",
}

// AlertFields returns the names of the alert variable's fields, in documentation order.
func AlertFields() []string { return append([]string(nil), alertFields...) }

// FileFields returns the names of the fields of each element of alert.files.
func FileFields() []string {
	return []string{"name", "mime_type", "extension", "sha256", "size"}
}

// Error is a compile error of one expression, at a position within it.
type Error struct {
	Line   int // 1-based; 0 when the problem is the expression as a whole
	Column int // 1-based
	Msg    string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return fmt.Sprintf("%s at %d:%d", e.Msg, e.Line, e.Column)
}

var (
	envOnce sync.Once
	envVal  *cel.Env
	envErr  error
)

// env returns the shared CEL environment; a cel.Env is safe for concurrent use.
func env() (*cel.Env, error) {
	envOnce.Do(func() {
		envVal, envErr = cel.NewEnv(
			cel.Variable("alert", cel.MapType(cel.StringType, cel.DynType)),
			cel.Variable("raw", cel.MapType(cel.StringType, cel.DynType)),
			cel.Variable("source", cel.StringType),
		)
	})
	return envVal, envErr
}

// Program is a compiled filter expression. It is safe for concurrent use.
type Program struct {
	prg cel.Program
}

// Compile parses and type-checks expr. The error is an *Error (or several joined) giving
// the position of the first problem.
func Compile(expr string) (*Program, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, &Error{Msg: "is empty; write a CEL expression such as alert.verdict == \"malicious\""}
	}
	if len(expr) > MaxExpressionBytes {
		return nil, &Error{Msg: fmt.Sprintf("is %d bytes long; allowed: at most %d", len(expr), MaxExpressionBytes)}
	}
	e, err := env()
	if err != nil {
		return nil, fmt.Errorf("build the filter environment: %w", err)
	}
	ast, iss := e.Compile(expr)
	if iss != nil && len(iss.Errors()) > 0 {
		first := iss.Errors()[0]
		loc := first.Location
		return nil, &Error{Line: loc.Line(), Column: loc.Column() + 1, Msg: first.Message}
	}
	if err := checkAlertFields(ast); err != nil {
		return nil, err
	}
	if !ast.OutputType().IsExactType(types.BoolType) {
		return nil, &Error{Msg: fmt.Sprintf("returns %s, not a bool; a filter must be true or false (compare a value, e.g. raw.taggedMalicious == true)", ast.OutputType())}
	}
	prg, err := e.Program(ast, cel.CostLimit(CostLimit))
	if err != nil {
		return nil, &Error{Msg: err.Error()}
	}
	return &Program{prg: prg}, nil
}

// checkAlertFields rejects alert.x and alert["x"] where x is not a field of the alert
// variable: alert is declared as a map so that its values can be of any type, which alone
// would turn a misspelt field into an evaluation error on every alert.
func checkAlertFields(a *cel.Ast) error {
	native := a.NativeRep()
	known := map[string]bool{}
	for _, f := range alertFields {
		known[f] = true
	}
	var bad *Error
	celast.PostOrderVisit(native.Expr(), celast.NewExprVisitor(func(ex celast.Expr) {
		if bad != nil {
			return
		}
		var operand celast.Expr
		var field string
		switch ex.Kind() {
		case celast.SelectKind:
			operand, field = ex.AsSelect().Operand(), ex.AsSelect().FieldName()
		case celast.CallKind:
			c := ex.AsCall()
			if c.FunctionName() != "_[_]" || len(c.Args()) != 2 || c.Args()[1].Kind() != celast.LiteralKind {
				return
			}
			s, ok := c.Args()[1].AsLiteral().Value().(string)
			if !ok {
				return
			}
			operand, field = c.Args()[0], s
		default:
			return
		}
		if operand.Kind() != celast.IdentKind || operand.AsIdent() != "alert" || known[field] {
			return
		}
		loc := native.SourceInfo().GetStartLocation(ex.ID())
		names := append([]string(nil), alertFields...)
		sort.Strings(names)
		bad = &Error{Line: loc.Line(), Column: loc.Column() + 1,
			Msg: fmt.Sprintf("alert has no field %q; its fields: %s", field, strings.Join(names, ", "))}
	}))
	if bad != nil {
		return bad
	}
	return nil
}

// ErrNotBool is returned by Eval when the result is not a boolean (possible only through
// dyn values that type-checking could not see, e.g. a ternary over raw fields).
var ErrNotBool = errors.New("the filter's result is not a bool")

// Eval evaluates the program over one alert. alert must hold the keys of AlertFields,
// raw is the record as the source sent it (nil is treated as empty). An error (a missing
// raw key, a type mismatch, the cost limit) says nothing about whether the alert matches.
func (p *Program) Eval(alert, raw map[string]any, source string) (bool, error) {
	if raw == nil {
		raw = map[string]any{}
	}
	out, _, err := p.prg.Eval(map[string]any{"alert": alert, "raw": raw, "source": source})
	if err != nil {
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, ErrNotBool
	}
	return b, nil
}
