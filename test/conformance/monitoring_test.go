package conformance

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/reconciler/reconciler/pkg/metrics"
)

const (
	alertsFile    = "../../contrib/prometheus/alerts.yml"
	dashboardFile = "../../contrib/grafana/reconciler.json"
)

// scrapeSeries are written by Prometheus itself for every target.
var scrapeSeries = map[string]bool{"up": true}

// agentSeries returns every series name the agent's registry can expose:
// a histogram family stands for its _bucket, _sum and _count series.
func agentSeries(t *testing.T) map[string]bool {
	t.Helper()
	fams, err := metrics.New("", "").Registry.Gather()
	if err != nil {
		t.Fatalf("gather the agent's registry: %v", err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		n := f.GetName()
		names[n] = true
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names[n+"_bucket"], names[n+"_sum"], names[n+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			names[n+"_sum"], names[n+"_count"] = true, true
		}
	}
	return names
}

// selectedMetrics parses a PromQL expression and returns the metric name
// of each of its selectors.
func selectedMetrics(expr string) ([]string, error) {
	e, err := parser.ParseExpr(expr)
	if err != nil {
		return nil, err
	}
	var names, unnamed []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		for _, m := range vs.LabelMatchers {
			if m.Name == model.MetricNameLabel && name == "" && m.Type == labels.MatchEqual {
				name = m.Value
			}
		}
		if name == "" {
			unnamed = append(unnamed, vs.String())
			return nil
		}
		names = append(names, name)
		return nil
	})
	if len(unnamed) > 0 {
		return nil, fmt.Errorf("selectors without a metric name: %s", strings.Join(unnamed, ", "))
	}
	return names, nil
}

// exprProblems says what is wrong with a PromQL expression of a rule or a
// panel: it does not parse, or names a metric the agent does not have.
func exprProblems(expr string, known map[string]bool) []string {
	names, err := selectedMetrics(expr)
	if err != nil {
		return []string{fmt.Sprintf("%q: %v", expr, err)}
	}
	if len(names) == 0 {
		return []string{fmt.Sprintf("%q selects no metric", expr)}
	}
	var probs []string
	for _, n := range names {
		if !known[n] && !scrapeSeries[n] {
			probs = append(probs, fmt.Sprintf("%s is not a metric of the agent", n))
		}
	}
	return probs
}

func checkExpr(t *testing.T, where, expr string, known map[string]bool) {
	t.Helper()
	for _, p := range exprProblems(expr, known) {
		t.Errorf("%s: %s", where, p)
	}
}

func TestAlertRules(t *testing.T) {
	groups, errs := rulefmt.ParseFile(alertsFile, false, model.UTF8Validation)
	for _, err := range errs {
		t.Errorf("%s: %v", alertsFile, err)
	}
	if len(errs) > 0 {
		return
	}
	known := agentSeries(t)
	alerts := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			where := fmt.Sprintf("alert %s", r.Alert)
			if r.Alert == "" {
				where = fmt.Sprintf("record %s", r.Record)
			}
			checkExpr(t, where, r.Expr, known)
			if r.Alert == "" {
				continue
			}
			alerts[r.Alert] = true
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", where, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: needs a summary and a description", where)
			}
		}
	}
	// What an operator of an unattended host must hear about.
	for _, want := range []string{
		"ReconcilerDown", "ReconcilerAbsent", "ReconcilerNotReady", "ReconcilerSpecNotConverged",
		"ReconcilerCrashLooping", "ReconcilerEventStreamDown", "ReconcilerEventStreamReconnecting",
		"ReconcilerSpecFilesInvalid",
	} {
		if !alerts[want] {
			t.Errorf("no alert %s", want)
		}
	}
}

// Grafana replaces these before the query reaches Prometheus.
var grafanaVars = regexp.MustCompile(`\$\{?[A-Za-z_][A-Za-z0-9_]*\}?`)

func grafanaToPromQL(expr string) string {
	for _, v := range []string{"$__rate_interval", "$__interval", "$__range"} {
		expr = strings.ReplaceAll(expr, v, "5m")
	}
	return grafanaVars.ReplaceAllString(expr, "x")
}

var labelValues = regexp.MustCompile(`^label_values\(\s*([^,]+?)\s*,\s*[A-Za-z_][A-Za-z0-9_]*\s*\)$`)

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string          `json:"name"`
			Type  string          `json:"type"`
			Query json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID      int     `json:"id"`
	Type    string  `json:"type"`
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"` // a collapsed row's
	GridPos struct {
		W, X int
	} `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("the dashboard needs a uid and a title")
	}
	known := agentSeries(t)
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
			if ids[p.ID] {
				t.Errorf("%s: duplicate id", where)
			}
			ids[p.ID] = true
			if p.GridPos.X+p.GridPos.W > 24 {
				t.Errorf("%s: wider than the grid", where)
			}
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: no query", where)
			}
			for _, tg := range p.Targets {
				checkExpr(t, fmt.Sprintf("%s target %s", where, tg.RefID), grafanaToPromQL(tg.Expr), known)
			}
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			if err := json.Unmarshal(v.Query, &q.Query); err != nil {
				t.Errorf("variable %s: query: %v", v.Name, err)
				continue
			}
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Errorf("variable %s: %q is not label_values(selector, label)", v.Name, q.Query)
			continue
		}
		checkExpr(t, "variable "+v.Name, m[1], known)
	}
}

// The checker itself: a misspelt metric, a broken expression and a
// selector without a name are all caught; histogram series and
// Prometheus's own series pass.
func TestExprProblems(t *testing.T) {
	known := map[string]bool{"reconciler_specs": true, "reconciler_convergence_seconds_bucket": true}
	for expr, want := range map[string]string{
		`sum(reconciler_spec{phase="Error"})`: "reconciler_spec is not a metric",
		`rate(reconciler_specs[5m]`:           "unclosed",
		`{phase="Error"}`:                     "without a metric name",
		`vector(1)`:                           "selects no metric",
		`histogram_quantile(0.9, rate(reconciler_convergence_seconds_bucket[5m]))`: "",
		`{__name__="reconciler_specs"} > 0 and on() up == 1`:                       "",
	} {
		got := strings.Join(exprProblems(expr, known), "; ")
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
			t.Errorf("%s: got %q, want a problem containing %q", expr, got, want)
		}
	}
}

func TestGrafanaVariablesBecomePromQL(t *testing.T) {
	got := grafanaToPromQL(`rate(reconciler_reconcile_total{instance=~"$instance",job="${job}"}[$__rate_interval])`)
	want := `rate(reconciler_reconcile_total{instance=~"x",job="x"}[5m])`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
