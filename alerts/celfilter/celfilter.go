package celfilter

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp/syntax"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	celast "github.com/google/cel-go/common/ast"
	"github.com/google/cel-go/common/overloads"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/interpreter"
)

// CostLimit bounds the work of one evaluation, in CEL's abstract cost units (roughly one
// per operation and per element a comprehension or string function visits). A filter over
// one alert needs a few hundred; the limit leaves room for comprehensions over recipients
// and files while keeping a pathological expression over a hostile record bounded.
//
// CEL adds a call's cost after the call returns, so the limit alone cannot stop one long
// call: MaxStringBytes and MaxRegexProgramSize bound every call, and a regular expression
// costs what RE2 does for it (see regexCost).
const CostLimit = 100_000

// MaxStringBytes is how much of every string a filter sees: alert fields and raw values
// longer than this are cut (at a character boundary) before the expression reads them, so a
// 10 MB subject costs a filter what a 4 KiB one does. The indexed alert keeps the whole value.
const MaxStringBytes = 4096

// MaxRegexProgramSize bounds the RE2 program of a regular expression (matches), in
// instructions; a pattern over it is a compile error. RE2 runs in time proportional to the
// input times the program, so with MaxStringBytes one match costs at most about four million
// steps (tens of milliseconds). The pattern must be a string literal, so that this is known
// when the configuration loads: a pattern taken from the record could compile to a program
// a hundred times larger.
const MaxRegexProgramSize = 1000

// DefaultTimeout is the evaluation deadline of Eval, and the one the alerts poller gives all
// the filters of one alert together. CEL checks it between the iterations of a
// comprehension; the bounds above keep every single call far below it.
const DefaultTimeout = 250 * time.Millisecond

// ErrLimit marks an evaluation stopped at one of its bounds (CostLimit, the deadline). The
// alert is kept (a filter fails open); callers count these apart from other evaluation
// errors.
var ErrLimit = errors.New("filter evaluation stopped at its bound")

// interruptCheckFrequency is how many comprehension iterations CEL runs between two checks
// of the deadline: a check is a channel poll, cheap next to an iteration.
const interruptCheckFrequency = 16

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
			cel.CustomTypeAdapter(cappingAdapter{next: types.DefaultTypeAdapter}),
		)
	})
	return envVal, envErr
}

// cappingAdapter turns the Go values of the variables into CEL values as the default adapter
// does, but cuts every string to MaxStringBytes. Maps and lists are wrapped lazily with this
// adapter, so a value is cut when the expression reads it, and only then: nothing is copied
// for fields a filter never reads.
type cappingAdapter struct{ next types.Adapter }

func (a cappingAdapter) NativeToValue(v any) ref.Val {
	switch v := v.(type) {
	case string:
		return types.String(capString(v))
	case map[string]any:
		return types.NewStringInterfaceMap(a, v)
	case []any:
		return types.NewDynamicList(a, v)
	case []string:
		return types.NewDynamicList(a, v)
	}
	return a.next.NativeToValue(v)
}

// capString returns s cut to at most MaxStringBytes, at a character boundary.
func capString(s string) string {
	if len(s) <= MaxStringBytes {
		return s
	}
	cut := MaxStringBytes
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// Program is a compiled filter expression. It is safe for concurrent use.
type Program struct {
	prg cel.Program
	// regexSizes are the program sizes of the literal patterns, measured at compile time.
	regexSizes map[string]int
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
	sizes, err := regexSizes(ast)
	if err != nil {
		return nil, err
	}
	p := &Program{regexSizes: sizes}
	prg, err := e.Program(ast, cel.CostLimit(CostLimit), cel.InterruptCheckFrequency(interruptCheckFrequency),
		cel.CostTrackerOptions(
			interpreter.OverloadCostTracker(overloads.Matches, p.regexCost),
			interpreter.OverloadCostTracker(overloads.MatchesString, p.regexCost)))
	if err != nil {
		return nil, &Error{Msg: err.Error()}
	}
	p.prg = prg
	return p, nil
}

// regexSizes checks the pattern of every matches call: a string literal whose RE2 program
// has at most MaxRegexProgramSize instructions. It returns the program sizes by pattern, so
// that regexCost need not compile a pattern again at every evaluation.
func regexSizes(a *cel.Ast) (map[string]int, error) {
	native := a.NativeRep()
	sizes := map[string]int{}
	var bad *Error
	celast.PostOrderVisit(native.Expr(), celast.NewExprVisitor(func(ex celast.Expr) {
		if bad != nil || ex.Kind() != celast.CallKind || ex.AsCall().FunctionName() != overloads.Matches {
			return
		}
		c := ex.AsCall()
		args := c.Args()
		if !c.IsMemberFunction() {
			args = args[1:] // matches(text, pattern)
		}
		if len(args) != 1 {
			return // the type checker has refused it already
		}
		arg := args[0]
		loc := native.SourceInfo().GetStartLocation(arg.ID())
		pat, ok := "", arg.Kind() == celast.LiteralKind
		if ok {
			pat, ok = arg.AsLiteral().Value().(string)
		}
		if !ok {
			bad = &Error{Line: loc.Line(), Column: loc.Column() + 1,
				Msg: "the pattern of matches must be a string literal (its size is checked when the configuration loads)"}
			return
		}
		n, err := regexProgramSize(pat)
		switch {
		case err != nil:
			bad = &Error{Line: loc.Line(), Column: loc.Column() + 1, Msg: fmt.Sprintf("invalid regular expression: %v", err)}
		case n > MaxRegexProgramSize:
			bad = &Error{Line: loc.Line(), Column: loc.Column() + 1,
				Msg: fmt.Sprintf("the regular expression compiles to %d instructions; allowed: at most %d (write a simpler pattern, or split it over several filters)", n, MaxRegexProgramSize)}
		default:
			sizes[pat] = n
		}
	}))
	if bad != nil {
		return nil, bad
	}
	return sizes, nil
}

// regexProgramSize is the number of instructions of pattern's RE2 program, as package regexp
// compiles it (after simplification, which expands counted repetitions).
func regexProgramSize(pattern string) (int, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return 0, err
	}
	prog, err := syntax.Compile(re.Simplify())
	if err != nil {
		return 0, err
	}
	return len(prog.Inst), nil
}

// regexCost is the cost of one matches call: RE2 visits at most (input length + 1) ×
// (program size) states, and a cost unit stands for about forty of them, so that CostLimit
// stops an expression after about four million steps of regular expressions, whatever the
// pattern's text length (which is all CEL's own estimate sees: a short pattern can make a
// large program).
func (p *Program) regexCost(args []ref.Val, _ ref.Val) *uint64 {
	if len(args) != 2 {
		return nil // not the shape this model knows: CEL's own estimate applies
	}
	in, ok1 := args[0].(types.String)
	pat, ok2 := args[1].(types.String)
	if !ok1 || !ok2 {
		return nil
	}
	size, ok := p.regexSizes[string(pat)]
	if !ok {
		return nil // cannot happen: every pattern is a literal, measured by Compile
	}
	steps := float64(len(in)+1) * float64(size)
	cost := uint64(math.Ceil(steps / regexStepsPerCost))
	return &cost
}

// regexStepsPerCost is how many RE2 steps one cost unit stands for.
const regexStepsPerCost = 40

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

// Eval evaluates the program over one alert within DefaultTimeout; see EvalContext.
func (p *Program) Eval(alert, raw map[string]any, source string) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DefaultTimeout)
	defer cancel()
	return p.EvalContext(ctx, alert, raw, source)
}

// EvalContext evaluates the program over one alert until ctx ends. alert must hold the keys
// of AlertFields, raw is the record as the source sent it (nil is treated as empty); the
// program sees every string cut to MaxStringBytes. An error (a missing raw key, a type
// mismatch) says nothing about whether the alert matches; one that stopped at a bound (the
// cost limit, ctx's deadline) wraps ErrLimit.
func (p *Program) EvalContext(ctx context.Context, alert, raw map[string]any, source string) (bool, error) {
	if raw == nil {
		raw = map[string]any{}
	}
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("%w: %w", ErrLimit, err)
	}
	out, _, err := p.prg.ContextEval(ctx, map[string]any{"alert": alert, "raw": raw, "source": capString(source)})
	if err != nil {
		var cancelled interpreter.EvalCancelledError
		if errors.As(err, &cancelled) || errors.Is(err, interpreter.InterruptError{}) || ctx.Err() != nil {
			return false, fmt.Errorf("%w: %w", ErrLimit, err)
		}
		return false, err
	}
	b, ok := out.Value().(bool)
	if !ok {
		return false, ErrNotBool
	}
	return b, nil
}
